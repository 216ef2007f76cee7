// `owt train MODEL.yaml [flags]`: flags override the model file; with mpirun -np K, K workers.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "commands.h"
#include "owt/train/memory_check.h"
#include "owt/train/metrics.h"
#include "owt/train/trainer.h"

namespace owt {
namespace {

// This process's command line as a shell would take it back (/proc/self/cmdline; under mpirun,
// the command each rank runs): for the run's TensorBoard text summary.
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out, arg;
  auto quote = [](const std::string& a) {
    const char* plain = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,@%+-";
    if (!a.empty() && a.find_first_not_of(plain) == std::string::npos) return a;
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  for (char c : raw) {
    if (c != '\0') {
      arg += c;
      continue;
    }
    out += (out.empty() ? "" : " ") + quote(arg);
    arg.clear();
  }
  return out;
}

// Every worker's peak resident set and estimate, as the largest peak's worker saw them
// (collective): {peak, estimate, rank}.
struct PeakMemory {
  int64_t peak = 0, estimate = 0;
  int rank = 0;
};
PeakMemory largest_peak(Communicator& comm, int64_t estimate) {
  auto to_mib = [](int64_t bytes) { return static_cast<float>(bytes >> 20); };  // exact < 16 TiB
  const float mine[2] = {to_mib(peak_resident_bytes()), to_mib(estimate)};
  std::vector<float> all(2 * static_cast<size_t>(comm.size()));
  comm.all_gather(mine, all.data(), std::vector<size_t>(comm.size(), 2));
  PeakMemory out;
  for (int r = 0; r < comm.size(); ++r)
    if (r == 0 || all[2 * r] > out.peak)
      out = PeakMemory{static_cast<int64_t>(all[2 * r]), static_cast<int64_t>(all[2 * r + 1]), r};
  out.peak <<= 20;
  out.estimate <<= 20;
  return out;
}

}  // namespace

void add_train_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model, device = "auto", parallel = "owt";
    TrainOptions opt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model (under mpirun -np K: K workers)");
  cmd->add_option("model", args->model, "Model file (YAML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", args->opt.data_dir, "Data set directory (overrides data.path)");
  cmd->add_option("--epochs", args->opt.epochs, "Epochs (0: the model file's solver.epochs)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-steps", args->opt.max_steps, "Stop after this many steps (0: no limit)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  add_batch_option(cmd, args->opt.batch);
  cmd->add_option("--lr", args->opt.lr, "Base learning rate (0: solver.lr)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->opt.seed, "Random seed (-1: the model file's seed)")
      ->capture_default_str();
  cmd->add_option("--out", args->opt.out_dir, "Run directory (default runs/<name>-<time>)");
  add_compute_options(cmd, args->opt.threads, args->device);
  cmd->add_option("--parallel", args->parallel,
                  "owt: the model file's hybrid plan; dp: every layer data-parallel")
      ->capture_default_str()->check(CLI::IsMember({"owt", "dp"}));
  cmd->add_option("--save-every", args->opt.save_every,
                  "Also checkpoint every N steps to checkpoints/step-N.safetensors (0: per epoch only)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--keep", args->opt.keep_checkpoints, "Step checkpoints to keep")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--resume", args->opt.resume,
                  "Continue a run: its directory (checkpoints/last.safetensors) or a checkpoint");
  cmd->add_option("--init-from", args->opt.init_from,
                  "Fine-tune: start from the weights of this checkpoint whose names and shapes match");
  cmd->add_option("--rename", args->opt.renames,
                  "With --init-from: read checkpoint tensor (or layer) OLD as NEW; repeatable")
      ->type_name("OLD=NEW");
  cmd->add_flag("--strict", args->opt.strict,
                "Unreadable images are errors instead of being skipped with a warning");
  cmd->add_flag("!--no-progress", args->opt.progress, "Print only one line per epoch");
  cmd->add_flag("--skip-memory-check", args->opt.skip_memory_check,
                "Start even when the memory estimate exceeds this host's share per worker");
  cmd->callback([args, &run] {
    run = [args](Communicator& world) {
      ComputeSetup setup = setup_compute(world, args->model, args->device, args->opt.threads, true);
      ModelConfig& cfg = setup.cfg;
      Backend* backend = setup.backend.get();
      Communicator& comm = *setup.comm;
      resolve_parallel(cfg, comm.size(), args->opt.batch, comm.rank() == 0);
      TrainOptions opt = args->opt;
      opt.command_line = command_line();
      opt.mode = args->parallel == "dp" ? ParallelMode::DataOnly : ParallelMode::Owt;
      TrainSummary s = train(cfg, opt, *backend, comm);
      const PeakMemory mem = largest_peak(comm, s.memory_estimate);
      if (comm.rank() == 0) {
        const std::string top5 = cfg.net.classes > 5 ? cat(", top-5 ", fixed(100 * s.final_top5, 2), "%") : "";
        std::printf("owt: trained %s for %lld steps on %d worker%s in %s: test top-1 %.2f%%%s, "
                    "loss %.4f; %.0f images/s\n",
                    cfg.name.c_str(), static_cast<long long>(s.steps), comm.size(),
                    comm.size() > 1 ? "s" : "", format_duration(s.seconds).c_str(),
                    100 * s.final_top1, top5.c_str(), s.final_loss, s.train_images_per_s);
        if (comm.size() > 1) {
          uint64_t total = 0;
          std::string by_op;
          for (const auto& [op, bytes] : s.comm_bytes_per_step) {
            total += bytes;
            by_op += cat(by_op.empty() ? "" : ", ", op, " ", bytes);
          }
          std::printf("owt: communication: %llu bytes per step per worker (%s)\n",
                      static_cast<unsigned long long>(total), by_op.c_str());
        }
        std::printf("owt: memory: peak resident set %s%s, estimated %s\n",
                    format_bytes(static_cast<double>(mem.peak)).c_str(),
                    comm.size() > 1 ? cat(" (rank ", mem.rank, ", the largest)").c_str() : "",
                    format_bytes(static_cast<double>(mem.estimate)).c_str());
        std::printf("owt: run directory %s\n", s.run_dir.c_str());
      }
      return 0;
    };
  });
}

}  // namespace owt
