// `owt plan MODEL.yaml --workers K [--batch B] [--bandwidth GB/s] [--flops TFLOP/s] [--json]`:
// per layer, elements each worker sends per step under data, model and owt's hybrid parallelism.
// The model file needs only name, input, classes and layers (and parallel); --batch stands in
// for solver.batch when the file has no solver.
#include <cstdio>

#include "commands.h"
#include "owt/parallel/cost_model.h"

namespace owt {

void add_plan_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model;
    int workers = 2;
    int64_t batch = 0;
    double bandwidth_gbs = 10, tflops = 0.2;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plan", "Predict communication and speedup for K workers");
  cmd->add_option("model", args->model, "Model file (YAML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--workers", args->workers, "Number of workers K")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_batch_option(cmd, args->batch);
  cmd->add_option("--bandwidth", args->bandwidth_gbs, "Link bandwidth per worker, GB/s")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--flops", args->tflops, "Sustained compute per worker, TFLOP/s")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args, &run] {
    run = [args](Communicator& comm) {
      if (comm.rank() != 0) return 0;
      // The network is all a plan needs: data and solver may be absent (checked when present).
      ModelConfig cfg = load_model_config(args->model, ModelParts::Network);
      if (args->batch == 0 && !cfg.has_solver)
        throw Error(cat(args->model, ": no solver section, so no solver.batch: give --batch B "
                        "(examples per worker per step)"));
      const int64_t batch = args->batch > 0 ? args->batch : cfg.solver.batch;
      PlanReport r = plan_costs(cfg.net, args->workers, batch, args->bandwidth_gbs * 1e9,
                                args->tflops * 1e12);
      if (args->json) {
        std::printf("{\"model\": \"%s\", \"workers\": %d, \"batch\": %lld, \"transition\": \"%s\", "
                    "\"layers\": [", cfg.name.c_str(), r.workers, static_cast<long long>(r.batch),
                    transition_name(r.transition));
        for (size_t i = 0; i < r.layers.size(); ++i) {
          const LayerCost& c = r.layers[i];
          std::printf("%s{\"name\": \"%s\", \"type\": \"%s\", \"placement\": \"%s\", \"params\": %lld, "
                      "\"data_parallel\": %.0f, \"model_parallel\": %.0f, \"hybrid\": %.0f}",
                      i ? ", " : "", c.name.c_str(), c.type.c_str(), c.placement.c_str(),
                      static_cast<long long>(c.params), c.data_parallel, c.model_parallel, c.hybrid);
        }
        std::printf("], \"data_parallel_elements\": %.0f, \"hybrid_elements\": %.0f, "
                    "\"step_seconds\": %.6g, \"step_seconds_dp\": %.6g, \"step_seconds_one_worker\": %.6g, "
                    "\"speedup\": %.4f, \"speedup_dp\": %.4f}\n",
                    r.data_parallel_total, r.hybrid_total, r.step_seconds, r.step_seconds_dp,
                    r.step_seconds_one, r.speedup, r.speedup_dp);
        return 0;
      }
      std::printf("%s on %d workers, batch %lld per worker (global %lld), transition %s\n",
                  cfg.name.c_str(), r.workers, static_cast<long long>(r.batch),
                  static_cast<long long>(r.batch * r.workers), transition_name(r.transition));
      std::printf("elements sent per worker per step:\n");
      std::printf("  %-12s %-22s %-6s %12s %14s %14s %14s\n", "layer", "type", "plan", "params",
                  "data-parallel", "model-parallel", "owt hybrid");
      for (const LayerCost& c : r.layers) {
        if (c.params == 0 && c.hybrid == 0) continue;
        std::printf("  %-12s %-22s %-6s %12lld %14.0f %14s %14.0f\n", c.name.c_str(), c.type.c_str(),
                    c.placement.c_str(), static_cast<long long>(c.params), c.data_parallel,
                    c.model_parallel > 0 ? cat(static_cast<long long>(c.model_parallel)).c_str() : "-",
                    c.hybrid);
      }
      std::printf("  %-12s %-22s %-6s %12s %14.0f %14s %14.0f\n", "total", "", "", "",
                  r.data_parallel_total, "", r.hybrid_total);
      std::printf("bytes per step per worker: data-parallel %.3g, owt hybrid %.3g (%.2fx less)\n",
                  4 * r.data_parallel_total, 4 * r.hybrid_total,
                  r.hybrid_total > 0 ? r.data_parallel_total / r.hybrid_total : 0.0);
      std::printf("predicted step (%.3g GB/s link, %.3g TFLOP/s): one worker %.4g s; %d workers: "
                  "owt %.4g s (speedup %.2fx), data-parallel %.4g s (speedup %.2fx)\n",
                  args->bandwidth_gbs, args->tflops, r.step_seconds_one, r.workers, r.step_seconds,
                  r.speedup, r.step_seconds_dp, r.speedup_dp);
      return 0;
    };
  });
}

}  // namespace owt
