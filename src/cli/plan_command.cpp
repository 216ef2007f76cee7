// `owt plan MODEL.yaml --workers K [--batch B] [--bandwidth GB/s] [--flops TFLOP/s] [--json]`:
// per layer, elements each worker sends per step under data, model and owt's hybrid parallelism,
// and the memory each worker holds under both (parallel/memory_model.h). With
// `--profile P.json --comm C.json` the step times come from the step-time model instead
// (parallel/step_time_model.h): measured layer times and collectives, with their overlap;
// `--profile P.json --bandwidth GB/s [--overlap F]` puts an assumed link under measured times.
// A model with `parallel: auto` layers is placed first (parallel/auto_parallel.h) and the
// candidates are listed.
// The model file needs only name, input, classes and layers (and parallel); --batch stands in
// for solver.batch when the file has no solver.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "owt/parallel/auto_parallel.h"
#include "owt/parallel/cost_model.h"
#include "owt/parallel/step_time_model.h"
#include "owt/train/memory_check.h"
#include "owt/train/metrics.h"

namespace owt {
namespace {

// The memory estimate as one JSON object (bytes), with its `largest` buffers.
std::string memory_json(const MemoryEstimate& m) {
  std::string largest;
  for (size_t i = 0; i < std::min<size_t>(5, m.largest.size()); ++i)
    largest += cat(i ? ", " : "", "{\"what\": ", json_string(m.largest[i].what), ", \"bytes\": ",
                   m.largest[i].bytes, "}");
  return cat("{\"rank\": ", m.rank, ", \"parameters\": ", m.parameters, ", \"gradients\": ",
             m.gradients, ", \"optimizer_state\": ", m.optimizer_state, ", \"activations\": ",
             m.activations, ", \"activation_grads\": ", m.activation_grads, ", \"transition\": ",
             m.transition, ", \"scratch\": ", m.scratch, ", \"activations_total\": ",
             m.activation_total(), ", \"data_loader\": ", m.data_loader, ", \"communication\": ", m.communication, ", \"initialization\": ",
             m.initialization, ", \"step_host\": ", m.step_host, ", \"evaluation\": ", m.evaluation, ", \"checkpoint\": ", m.checkpoint,
             ", \"transient\": ", m.transient(), ", \"runtime\": ", m.runtime,
             ", \"peak\": ", m.peak(), ", \"largest\": [", largest, "]}");
}

void print_memory_table(const MemoryEstimate& owt, const MemoryEstimate& dp) {
  std::printf("memory per worker (the largest worker; the data set itself is not counted):\n");
  std::printf("  %-34s %14s %14s\n", "", "owt hybrid", "data-parallel");
  auto row = [](const char* what, int64_t a, int64_t b) {
    std::printf("  %-34s %14s %14s\n", what, format_bytes(static_cast<double>(a)).c_str(),
                format_bytes(static_cast<double>(b)).c_str());
  };
  row("parameters", owt.parameters, dp.parameters);
  row("gradients", owt.gradients, dp.gradients);
  row("optimizer state (momentum)", owt.optimizer_state, dp.optimizer_state);
  row("activations, total", owt.activation_total(), dp.activation_total());
  row("  layer outputs and input", owt.activations, dp.activations);
  row("  input gradients and dlogits", owt.activation_grads, dp.activation_grads);
  row("  transition", owt.transition, dp.transition);
  row("  layer scratch", owt.scratch, dp.scratch);
  row("data loaders", owt.data_loader, dp.data_loader);
  row("communication (MPI buffers)", owt.communication, dp.communication);
  row("passing buffers (init, loss, save)", owt.transient(), dp.transient());
  row("runtime (process, threads)", owt.runtime, dp.runtime);
  row("peak", owt.peak(), dp.peak());
  for (const MemoryEstimate* m : {&owt, &dp}) {
    std::printf("largest activations, %s:", m == &owt ? "owt hybrid" : "data-parallel");
    for (size_t i = 0; i < std::min<size_t>(3, m->largest.size()); ++i)
      std::printf("%s %s %s", i ? "," : "", m->largest[i].what.c_str(),
                  format_bytes(static_cast<double>(m->largest[i].bytes)).c_str());
    std::printf("\n");
  }
}

// The step-time model's predictions, replacing the flag-based ones in `r`.
struct MeasuredPrediction {
  StepPrediction hybrid, dp, one;
};

MeasuredPrediction predict_measured(const NetworkSpec& net, PlanReport* r, const StepProfile& profile,
                                    const CommCalibration& comm) {
  MeasuredPrediction m;
  m.hybrid = predict_step(net, r->workers, r->batch, ParallelMode::Owt, profile, comm);
  m.dp = predict_step(net, r->workers, r->batch, ParallelMode::DataOnly, profile, comm);
  m.one = predict_step(net, 1, r->batch * r->workers, ParallelMode::Owt, profile, comm);
  r->step_seconds = m.hybrid.seconds;
  r->step_seconds_dp = m.dp.seconds;
  r->step_seconds_one = m.one.seconds;
  r->speedup = r->step_seconds_one / r->step_seconds;
  r->speedup_dp = r->step_seconds_one / r->step_seconds_dp;
  return m;
}

std::string prediction_json(const StepPrediction& p) {
  char out[160];
  std::snprintf(out, sizeof out, "{\"step_seconds\": %.6g, \"compute_seconds\": %.6g, \"comm_seconds\": %.6g, "
                "\"exposed_comm_seconds\": %.6g}", p.seconds, p.compute, p.comm, p.exposed_comm());
  return out;
}

void print_prediction(const char* what, const StepPrediction& p) {
  std::printf("  %-14s step %9.3f ms = compute %9.3f ms + exposed communication %8.3f ms "
              "(of %8.3f ms in all)\n", what, 1e3 * p.seconds, 1e3 * p.compute, 1e3 * p.exposed_comm(), 1e3 * p.comm);
}

std::string auto_json(const AutoChoice& c) {
  std::string list;
  for (const AutoCandidate& a : c.candidates) {
    char t[48];
    std::snprintf(t, sizeof t, "%.6g", a.step_seconds);
    list += cat(list.empty() ? "" : ", ", "{\"first_model\": ", json_string(a.first_model),
                ", \"step_seconds\": ", t, "}");
  }
  return cat("{\"inputs\": ", json_string(c.inputs), ", \"candidates\": [", list, "]}");
}

void print_auto(const AutoChoice& c) {
  std::printf("parallel: auto, predicted from %s, fastest first:\n", c.inputs.c_str());
  for (size_t i = 0; i < c.candidates.size(); ++i)
    std::printf("  %s %-40s %10.3f ms per step\n", i == 0 ? "chosen   " : i == 1 ? "runner-up" : "         ",
                c.candidates[i].describe().c_str(), 1e3 * c.candidates[i].step_seconds);
}

}  // namespace

void add_plan_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model;
    int workers = 2;
    int64_t batch = 0;
    double bandwidth_gbs = 10, tflops = 0.2, overlap = 0;
    int threads = 0;
    bool json = false, figures_given = false;
    std::string profile, comm;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plan", "Predict communication and speedup for K workers");
  cmd->add_option("model", args->model, "Model file (YAML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--workers", args->workers, "Number of workers K")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_batch_option(cmd, args->batch);
  CLI::Option* bandwidth = cmd->add_option("--bandwidth", args->bandwidth_gbs, "Link bandwidth per worker, GB/s")
      ->capture_default_str()->check(CLI::PositiveNumber);
  CLI::Option* flops = cmd->add_option("--flops", args->tflops, "Sustained compute per worker, TFLOP/s")
      ->capture_default_str()->check(CLI::PositiveNumber);
  CLI::Option* overlap = cmd->add_option("--overlap", args->overlap,
                  "With --bandwidth/--flops for parallel: auto: share of asynchronous collectives hidden "
                  "under compute, 0..1")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--threads", args->threads,
                  "Compute threads per worker for the memory estimate (0: cores / workers)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--profile", args->profile,
                  "One worker's layer times (owt bench MODEL --profile --json); with --comm, or with "
                  "--bandwidth (and --overlap) for an assumed link")
      ->check(CLI::ExistingFile);
  cmd->add_option("--comm", args->comm, "Collective timings (mpirun ... owt bench --comm --json); with --profile")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args, &run, bandwidth, flops, overlap] {
    // The step-time model needs layer times and a link: measured (--comm) or assumed (--bandwidth,
    // e.g. a profile taken on one GPU, whose collectives one GPU cannot time).
    if (!args->comm.empty() && args->profile.empty())
      throw CLI::ValidationError("--comm goes with --profile: the step-time model needs the layer times too");
    if (!args->profile.empty() && args->comm.empty() && bandwidth->count() == 0)
      throw CLI::ValidationError("--profile needs the link: --comm C.json (measured collectives) or "
                                 "--bandwidth GB/s (assumed, with --overlap)");
    if (!args->comm.empty() && bandwidth->count() + overlap->count() > 0)
      throw CLI::ValidationError("--comm and --bandwidth/--overlap both describe the link: give one");
    args->figures_given = bandwidth->count() + flops->count() + overlap->count() > 0;
    run = [args](Communicator& comm) {
      if (comm.rank() != 0) return 0;
      // The network is all a plan needs: data and solver may be absent (checked when present).
      ModelConfig cfg = load_model_config(args->model, ModelParts::Network);
      if (args->batch == 0 && !cfg.has_solver)
        throw Error(cat(args->model, ": no solver section, so no solver.batch: give --batch B "
                        "(examples per worker per step)"));
      const int64_t batch = args->batch > 0 ? args->batch : cfg.solver.batch;
      // What auto decides from: --profile/--comm, else --bandwidth/--flops when given, else
      // the model file's own inputs, else the flags' defaults.
      const bool measured = !args->profile.empty();
      StepProfile profile;
      CommCalibration link;
      if (measured) {
        profile = load_step_profile(args->profile);
        link = args->comm.empty()
                   ? calibration_from_bandwidth(args->bandwidth_gbs * 1e9, args->workers, args->overlap)
                   : load_comm_calibration(args->comm);  // link.file names either
      }
      AutoChoice choice;
      const AutoParallelInputs& own = cfg.net.parallel.auto_inputs;
      if (measured) {
        choice = choose_parallel(cfg.net, args->workers, batch, profile, link);
      } else if (args->figures_given || (!own.measured() && !own.figures())) {
        choice = choose_parallel_from_figures(cfg.net, args->workers, batch, args->bandwidth_gbs, args->tflops,
                                              args->overlap);
      } else {
        choice = resolve_auto_parallel(cfg.net, args->workers, batch);
      }
      if (choice.any_auto) cfg.net = std::move(choice.spec);
      PlanReport r = plan_costs(cfg.net, args->workers, batch, args->bandwidth_gbs * 1e9,
                                args->tflops * 1e12);
      MeasuredPrediction m;
      if (measured) m = predict_measured(cfg.net, &r, profile, link);
      const int threads = args->threads > 0 ? args->threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / args->workers);
      const MemoryEstimate mem_owt = estimate_memory_largest(
          cfg.net, memory_run_for(cfg, args->workers, batch, ParallelMode::Owt, threads));
      const MemoryEstimate mem_dp = estimate_memory_largest(
          cfg.net, memory_run_for(cfg, args->workers, batch, ParallelMode::DataOnly, threads));
      if (args->json) {
        std::printf("{\"model\": %s, \"workers\": %d, \"batch\": %lld, \"transition\": \"%s\", "
                    "\"layers\": [", json_string(cfg.name).c_str(), r.workers, static_cast<long long>(r.batch),
                    transition_name(r.transition));
        for (size_t i = 0; i < r.layers.size(); ++i) {
          const LayerCost& c = r.layers[i];
          std::printf("%s{\"name\": %s, \"type\": \"%s\", \"placement\": \"%s\", \"params\": %lld, "
                      "\"data_parallel\": %.0f, \"model_parallel\": %.0f, \"hybrid\": %.0f}",
                      i ? ", " : "", json_string(c.name).c_str(), c.type.c_str(), c.placement.c_str(),
                      static_cast<long long>(c.params), c.data_parallel, c.model_parallel, c.hybrid);
        }
        std::printf("], \"data_parallel_elements\": %.0f, \"hybrid_elements\": %.0f, "
                    "\"step_seconds\": %.6g, \"step_seconds_dp\": %.6g, \"step_seconds_one_worker\": %.6g, "
                    "\"speedup\": %.4f, \"speedup_dp\": %.4f, \"threads\": %d, "
                    "\"memory\": {\"hybrid\": %s, \"data_parallel\": %s}",
                    r.data_parallel_total, r.hybrid_total, r.step_seconds, r.step_seconds_dp,
                    r.step_seconds_one, r.speedup, r.speedup_dp, threads,
                    memory_json(mem_owt).c_str(), memory_json(mem_dp).c_str());
        if (choice.any_auto) std::printf(", \"auto\": %s", auto_json(choice).c_str());
        if (measured)
          std::printf(", \"prediction\": {\"profile\": %s, \"comm\": %s, \"hybrid\": %s, "
                      "\"data_parallel\": %s, \"one_worker\": %s}",
                      json_string(args->profile).c_str(), json_string(link.file).c_str(),
                      prediction_json(m.hybrid).c_str(), prediction_json(m.dp).c_str(),
                      prediction_json(m.one).c_str());
        std::printf("}\n");
        return 0;
      }
      std::printf("%s on %d workers, batch %lld per worker (global %lld), transition %s\n",
                  cfg.name.c_str(), r.workers, static_cast<long long>(r.batch),
                  static_cast<long long>(r.batch * r.workers), transition_name(r.transition));
      if (choice.any_auto) print_auto(choice);
      std::printf("elements sent per worker per step:\n");
      int width = 12;  // the layer column fits the longest name (ResNets: layer1.0.downsample.0)
      for (const LayerCost& c : r.layers) width = std::max(width, static_cast<int>(c.name.size()));
      std::printf("  %-*s %-22s %-6s %12s %14s %14s %14s\n", width, "layer", "type", "plan", "params",
                  "data-parallel", "model-parallel", "owt hybrid");
      for (const LayerCost& c : r.layers) {
        if (c.params == 0 && c.hybrid == 0) continue;
        std::printf("  %-*s %-22s %-6s %12lld %14.0f %14s %14.0f\n", width, c.name.c_str(), c.type.c_str(),
                    c.placement.c_str(), static_cast<long long>(c.params), c.data_parallel,
                    c.model_parallel > 0 ? cat(static_cast<long long>(c.model_parallel)).c_str() : "-",
                    c.hybrid);
      }
      std::printf("  %-*s %-22s %-6s %12s %14.0f %14s %14.0f\n", width, "total", "", "", "",
                  r.data_parallel_total, "", r.hybrid_total);
      std::printf("bytes per step per worker: data-parallel %.3g, owt hybrid %.3g (%.2fx less)\n",
                  4 * r.data_parallel_total, 4 * r.hybrid_total,
                  r.hybrid_total > 0 ? r.data_parallel_total / r.hybrid_total : 0.0);
      if (measured) {
        std::printf("predicted step from %s and %s: one worker on the global batch %.4g s; %d workers: "
                    "owt %.4g s (speedup %.2fx), data-parallel %.4g s (speedup %.2fx)\n",
                    args->profile.c_str(), link.file.c_str(), r.step_seconds_one, r.workers,
                    r.step_seconds, r.speedup, r.step_seconds_dp, r.speedup_dp);
        print_prediction("owt hybrid", m.hybrid);
        print_prediction("data-parallel", m.dp);
      } else {
        std::printf("predicted step (%.3g GB/s link, %.3g TFLOP/s): one worker %.4g s; %d workers: "
                    "owt %.4g s (speedup %.2fx), data-parallel %.4g s (speedup %.2fx)\n",
                    args->bandwidth_gbs, args->tflops, r.step_seconds_one, r.workers, r.step_seconds,
                    r.speedup, r.step_seconds_dp, r.speedup_dp);
      }
      print_memory_table(mem_owt, mem_dp);
      return 0;
    };
  });
}

}  // namespace owt
