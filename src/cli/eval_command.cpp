// `owt eval MODEL.yaml --checkpoint CKPT [--data DIR] [--json]`: test-set loss, top-1, top-5.
#include <cstdio>

#include "commands.h"
#include "owt/data/loader.h"
#include "owt/train/model.h"
#include "owt/train/checkpoint.h"
#include "owt/train/data_split.h"
#include "owt/train/evaluate.h"
#include "owt/train/metrics.h"
#include "owt/train/trainer.h"

namespace owt {

void add_eval_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model, checkpoint, data, device = "auto", split = "test";
    int64_t batch = 0;
    int threads = 0, views = 0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on the test set");
  cmd->add_option("model", args->model, "Model file (YAML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint (.safetensors)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", args->data, "Data set directory (overrides data.path)");
  cmd->add_option("--split", args->split, "Which split to evaluate")
      ->capture_default_str()->check(CLI::IsMember({"train", "test"}));
  add_batch_option(cmd, args->batch);
  add_compute_options(cmd, args->threads, args->device);
  cmd->add_option("--views", args->views,
                  "1: the centre crop; 10: corners and centre, mirrored, logits averaged "
                  "(0: data.augment.test_views)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a sentence");
  cmd->callback([args, &run] {
    run = [args](Communicator& world) {
      ComputeSetup setup = setup_compute(world, args->model, args->device, args->threads, !args->json);
      ModelConfig& cfg = setup.cfg;
      Backend* backend = setup.backend.get();
      Communicator& comm = *setup.comm;
      TrainOptions overrides;
      overrides.data_dir = args->data;
      overrides.batch = args->batch;
      apply_overrides(cfg, overrides);
      auto data = open_split(cfg, args->split);
      Transform tf(cfg.data.eval, data->example_shape(), cfg.seed);
      check_split(*data, cfg, tf, args->split);
      const int64_t b = cfg.solver.batch;
      // One loader per evaluation view: the centre crop, or the 10 crops of test_views: 10.
      const int views = args->views > 0 ? args->views : cfg.data.eval.test_views;
      if (views != 1 && views != 10) throw Error(cat("--views ", views, ": expected 1 or 10"));
      if (views == 10 && cfg.data.eval.crop == 0)
        throw Error(cat(cfg.file, ": 10-view evaluation needs data.augment.crop"));
      std::vector<std::unique_ptr<BatchLoader>> loaders;
      std::vector<BatchLoader*> view_loaders;
      for (int v = 0; v < views; ++v) {
        LoaderSpec spec{b, comm.rank(), comm.size(), false, false, false, cfg.seed, 1};
        if (views > 1) spec.view = v;
        loaders.push_back(std::make_unique<BatchLoader>(*data, tf, spec));
        view_loaders.push_back(loaders.back().get());
      }
      Model model(cfg, *backend, comm, ParallelMode::Owt, ParamInit::FromCheckpoint);
      LoadedCheckpoint ck = load_checkpoint(args->checkpoint, model.store(), *backend, false);
      EvalCounts c = evaluate_views(model.stepper(), *data, view_loaders, cfg.net.input, b, *backend, comm);
      if (comm.rank() != 0) return 0;
      double n = static_cast<double>(c.rows);
      if (args->json) {
        std::printf("{\"checkpoint\": \"%s\", \"split\": \"%s\", \"examples\": %lld, \"step\": %lld, "
                    "\"loss\": %.6f, \"top1\": %.6f, \"top5\": %.6f}\n",
                    args->checkpoint.c_str(), args->split.c_str(), static_cast<long long>(c.rows),
                    static_cast<long long>(ck.step), c.loss_sum / n, c.top1 / n, c.top5 / n);
      } else {
        const std::string top5 = cfg.net.classes > 5 ? cat(", top-5 ", fixed(100 * c.top5 / n, 2), "%") : "";
        std::printf("%s on %lld %s examples: loss %.4f, top-1 %.2f%%%s\n",
                    args->checkpoint.c_str(), static_cast<long long>(c.rows), args->split.c_str(),
                    c.loss_sum / n, 100 * c.top1 / n, top5.c_str());
      }
      return 0;
    };
  });
}

}  // namespace owt
