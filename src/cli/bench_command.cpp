// `owt bench MODEL.yaml [--batch B] [--iters N] [--profile] [--json]`: training throughput on
// synthetic data, per-layer times with --profile. `owt bench --comm [--json]`: collective
// timings over the job's communicator, and their latency-bandwidth fits.
#include <omp.h>

#include <cstdio>

#include "commands.h"
#include "owt/backend/backend.h"
#include "owt/comm/make_communicator.h"
#include "owt/train/benchmark.h"
#include "owt/train/comm_benchmark.h"

namespace owt {
namespace {

std::string layers_json(const std::vector<LayerProfile>& layers) {
  std::string out;
  char times[96];
  for (const LayerProfile& l : layers) {
    std::snprintf(times, sizeof times, "\"forward_ms\": %.4f, \"backward_ms\": %.4f", l.forward_ms, l.backward_ms);
    out += cat(out.empty() ? "" : ", ", "{\"name\": ", json_string(l.name), ", \"type\": \"", l.type, "\", ", times, "}");
  }
  return out;
}

void print_model_bench(const ModelConfig& cfg, const Backend& backend, const BenchResult& r,
                       const std::string& parallel, bool profile, bool json) {
  std::string bytes;
  for (const auto& kv : r.bytes_per_step)
    bytes += cat(bytes.empty() ? "" : ", ", "\"", kv.first, "\": ", kv.second);
  if (json) {
    std::printf("{\"model\": %s, \"backend\": \"%s\", \"precision\": \"%s\", \"parallel\": \"%s\", "
                "\"workers\": %d, \"threads\": %d, \"batch\": %lld, \"iters\": %lld, "
                "\"images_per_s\": %.2f, \"ms_per_step\": %.3f, \"median_ms_per_step\": %.3f, "
                "\"gflops_per_worker\": %.2f, \"peak_gpu_bytes\": %llu, \"bytes_per_step\": {%s}",
                json_string(cfg.name).c_str(), backend.name().c_str(), cfg.precision.c_str(), parallel.c_str(),
                r.workers, omp_get_max_threads(), static_cast<long long>(r.batch),
                static_cast<long long>(r.iters), r.images_per_s, 1e3 * r.seconds_per_step,
                1e3 * r.median_seconds_per_step, r.gflops_per_worker,
                static_cast<unsigned long long>(r.peak_gpu_bytes), bytes.c_str());
    if (profile) std::printf(", \"layers\": [%s]", layers_json(r.layers).c_str());
    std::printf("}\n");
    return;
  }
  std::printf("%s: %d worker(s) x batch %lld: %.1f images/s, %.2f ms/step, %.1f GFLOP/s per "
              "worker (%.2f GFLOP forward per step)\n",
              cfg.name.c_str(), r.workers, static_cast<long long>(r.batch), r.images_per_s,
              1e3 * r.seconds_per_step, r.gflops_per_worker, r.forward_gflop_per_step);
  for (const auto& kv : r.bytes_per_step)
    std::printf("  %s: %llu bytes per step\n", kv.first.c_str(), static_cast<unsigned long long>(kv.second));
  if (profile)
    std::printf("  per layer, median over the timed steps (median step %.2f ms):\n", 1e3 * r.median_seconds_per_step);
  for (const auto& l : r.layers)
    std::printf("  %-12s %-22s forward %8.3f ms  backward %8.3f ms\n", l.name.c_str(), l.type.c_str(),
                l.forward_ms, l.backward_ms);
}

void print_comm_bench(const CommCalibration& c, bool json) {
  if (json) {
    std::printf("%s\n", comm_calibration_json(c).c_str());
    return;
  }
  const std::vector<CommOpTimings>& ops = c.ops;
  std::printf("%s, %d workers: median seconds per call (the slowest rank), bytes per rank\n",
              c.communicator.c_str(), c.workers);
  std::printf("  %-12s", "bytes");
  for (const CommOpTimings& t : ops) std::printf(" %14s", comm_op_name(t.op));
  std::printf("\n");
  for (size_t j = 0; j < ops.front().points.size(); ++j) {
    std::printf("  %-12.0f", ops.front().points[j].bytes);
    for (const CommOpTimings& t : ops) std::printf(" %14.3e", t.points[j].seconds);
    std::printf("\n");
  }
  std::printf("  fit: alpha (latency) and 1/beta (bandwidth per rank)\n");
  for (const CommOpTimings& t : ops)
    std::printf("  %-14s alpha %9.2f us   1/beta %8.3f GB/s\n", comm_op_name(t.op), 1e6 * t.fit.alpha,
                t.fit.beta > 0 ? 1e-9 / t.fit.beta : 0.0);
  std::printf("  overlap of an asynchronous all-reduce with computation: %.2f\n", c.overlap);
}

}  // namespace

void add_bench_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model, device = "auto", parallel = "owt", precision;
    BenchOptions opt;
    CommBenchOptions comm_opt;
    double max_mib = 256;
    int threads = 0;
    bool json = false, comm = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench", "Time training steps on synthetic data, or collectives (--comm)");
  cmd->add_option("model", args->model, "Model file (YAML); not with --comm")->check(CLI::ExistingFile);
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
  cmd->add_flag("--profile", args->opt.profile, "Also time each layer's forward and backward (medians)");
  cmd->add_flag("--comm", args->comm,
                "Time all-reduce, all-gather, reduce-scatter, broadcast and reduce from 4 KiB per rank "
                "(run under mpirun with K >= 2)");
  cmd->add_option("--max-mib", args->max_mib, "With --comm: the largest message per rank, MiB")
      ->capture_default_str()->check(CLI::Range(0.0625, 4096.0));
  cmd->callback([args, &run] {
    if (args->comm == !args->model.empty())
      throw CLI::ValidationError(args->comm ? "bench --comm times collectives and takes no model file"
                                            : "bench needs a model file (or --comm)");
    run = [args](Communicator& world) {
      if (args->comm) {
        if (world.size() < 2)
          throw Error("bench --comm needs at least 2 workers: run it as mpirun -np K owt bench --comm");
        set_thread_count(args->threads);
        std::unique_ptr<Backend> backend = make_backend_for(args->device, "tf32", false);
        std::unique_ptr<Communicator> device_comm = make_device_communicator(world, *backend);
        Communicator& comm = device_comm ? *device_comm : world;
        args->comm_opt.max_bytes = static_cast<size_t>(args->max_mib * (1 << 20));
        const CommCalibration c = run_comm_benchmark(comm, *backend, args->comm_opt);
        if (comm.rank() == 0) print_comm_bench(c, args->json);
        return 0;
      }
      ComputeSetup setup = setup_compute(world, args->model, args->device, args->threads, !args->json,
                                         args->precision);
      args->opt.mode = args->parallel == "dp" ? ParallelMode::DataOnly : ParallelMode::Owt;
      resolve_parallel(setup.cfg, setup.comm->size(), args->opt.batch, !args->json && setup.comm->rank() == 0);
      BenchResult r = run_benchmark(setup.cfg, args->opt, *setup.backend, *setup.comm);
      if (setup.comm->rank() == 0)
        print_model_bench(setup.cfg, *setup.backend, r, args->parallel, args->opt.profile, args->json);
      return 0;
    };
  });
}

}  // namespace owt
