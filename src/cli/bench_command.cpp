// `owt bench MODEL.yaml [--batch B] [--iters N] [--json]`: training throughput on synthetic data.
#include <cstdio>

#include "commands.h"
#include "owt/train/benchmark.h"

namespace owt {

void add_bench_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model, device = "auto", parallel = "owt", precision;
    BenchOptions opt;
    int threads = 0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench", "Time training steps on synthetic data");
  cmd->add_option("model", args->model, "Model file (YAML)")->required()->check(CLI::ExistingFile);
  add_batch_option(cmd, args->opt.batch);
  cmd->add_option("--iters", args->opt.iters, "Timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", args->opt.warmup, "Untimed steps before timing")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  add_compute_options(cmd, args->threads, args->device);
  cmd->add_option("--parallel", args->parallel, "owt: hybrid plan; dp: every layer data-parallel")
      ->capture_default_str()->check(CLI::IsMember({"owt", "dp"}));
  cmd->add_option("--precision", args->precision,
                  "Override the model file's precision (on the CPU tf32 and fp32-strict are fp32)")
      ->check(CLI::IsMember({"tf32", "fp32-strict", "bf16"}));
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->add_flag("--profile", args->opt.profile, "Also time each layer's forward and backward");
  cmd->callback([args, &run] {
    run = [args](Communicator& world) {
      ComputeSetup setup = setup_compute(world, args->model, args->device, args->threads, !args->json,
                                         args->precision);
      ModelConfig& cfg = setup.cfg;
      Backend* backend = setup.backend.get();
      Communicator& comm = *setup.comm;
      args->opt.mode = args->parallel == "dp" ? ParallelMode::DataOnly : ParallelMode::Owt;
      BenchResult r = run_benchmark(cfg, args->opt, *backend, comm);
      if (comm.rank() != 0) return 0;
      std::string bytes;
      for (const auto& kv : r.bytes_per_step)
        bytes += cat(bytes.empty() ? "" : ", ", "\"", kv.first, "\": ", kv.second);
      if (args->json) {
        std::printf("{\"model\": \"%s\", \"backend\": \"%s\", \"precision\": \"%s\", "
                    "\"workers\": %d, \"batch\": %lld, \"iters\": %lld, "
                    "\"images_per_s\": %.2f, \"ms_per_step\": %.3f, \"gflops_per_worker\": %.2f, "
                    "\"peak_gpu_bytes\": %llu, \"bytes_per_step\": {%s}}\n",
                    cfg.name.c_str(), backend->name().c_str(), cfg.precision.c_str(), r.workers,
                    static_cast<long long>(r.batch), static_cast<long long>(r.iters), r.images_per_s,
                    1e3 * r.seconds_per_step,
                    r.gflops_per_worker, static_cast<unsigned long long>(r.peak_gpu_bytes),
                    bytes.c_str());
      } else {
        std::printf("%s: %d worker(s) x batch %lld: %.1f images/s, %.2f ms/step, %.1f GFLOP/s per "
                    "worker (%.2f GFLOP forward per step)\n",
                    cfg.name.c_str(), r.workers, static_cast<long long>(r.batch), r.images_per_s,
                    1e3 * r.seconds_per_step, r.gflops_per_worker, r.forward_gflop_per_step);
        for (const auto& kv : r.bytes_per_step)
          std::printf("  %s: %llu bytes per step\n", kv.first.c_str(),
                      static_cast<unsigned long long>(kv.second));
        for (const auto& l : r.layers)
          std::printf("  %-12s %-22s forward %8.3f ms  backward %8.3f ms\n", l.name.c_str(),
                      l.type.c_str(), l.forward_ms, l.backward_ms);
      }
      return 0;
    };
  });
}

}  // namespace owt
