// `owt eval MODEL.yaml --checkpoint CKPT [--data DIR] [--confusion] [--logits FILE] [--json]`:
// test-set loss, top-1, top-5; the confusion matrix and per-class accuracy; the logits as .npy.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "commands.h"
#include "owt/data/loader.h"
#include "owt/train/model.h"
#include "owt/train/checkpoint.h"
#include "owt/train/data_split.h"
#include "owt/train/evaluate.h"
#include "owt/train/metrics.h"
#include "owt/train/trainer.h"

namespace owt {
namespace {

// Examples and correct predictions of class c.
int64_t row_sum(const EvalResult& r, int64_t c) {
  int64_t n = 0;
  for (int64_t p = 0; p < r.classes; ++p) n += r.confusion[c * r.classes + p];
  return n;
}

// `, "classes": [...], "confusion": [[...], ...], "per_class": [...]` for --json.
std::string confusion_json(const EvalResult& r, const std::vector<std::string>& names) {
  std::string classes, matrix, per_class;
  for (int64_t c = 0; c < r.classes; ++c) {
    const int64_t n = row_sum(r, c), correct = r.confusion[c * r.classes + c];
    classes += cat(c ? ", " : "", json_string(names[c]));
    matrix += c ? ", [" : "[";
    for (int64_t p = 0; p < r.classes; ++p) matrix += cat(p ? ", " : "", r.confusion[c * r.classes + p]);
    matrix += "]";
    per_class += cat(c ? ", " : "", "{\"class\": ", json_string(names[c]), ", \"examples\": ", n,
                     ", \"correct\": ", correct, ", \"accuracy\": ",
                     n ? fixed(static_cast<double>(correct) / n, 6) : std::string("null"), "}");
  }
  return cat(", \"classes\": [", classes, "], \"confusion\": [", matrix, "], \"per_class\": [",
             per_class, "]");
}

// The confusion matrix as a table (rows: true class, columns: predicted class), with each
// class's examples and accuracy; above 20 classes, per-class accuracy and the most confused
// pairs instead (the whole matrix is in --json).
void print_confusion(const EvalResult& r, const std::vector<std::string>& names) {
  const int64_t k = r.classes;
  int64_t most = 0;
  for (int64_t v : r.confusion) most = std::max(most, v);
  const int cell = std::max<int>(5, static_cast<int>(std::to_string(most).size()) + 1);
  size_t name_w = 5;
  for (int64_t c = 0; c < k; ++c)
    name_w = std::max(name_w, std::to_string(c).size() + 1 + std::min<size_t>(names[c].size(), 24));
  auto label = [&](int64_t c) { return cat(c, " ", names[c].substr(0, 24)); };
  auto accuracy = [&](int64_t c) {
    const int64_t n = row_sum(r, c);
    return n ? cat(fixed(100.0 * r.confusion[c * k + c] / n, 2), "%") : std::string("-");
  };
  const bool matrix = k <= 20;
  std::printf("\n%s (rows: true class, columns: predicted class)\n",
              matrix ? "confusion matrix" : "per-class accuracy");
  std::printf("%-*s", static_cast<int>(name_w), "class");
  if (matrix)
    for (int64_t p = 0; p < k; ++p) std::printf("%*lld", cell, static_cast<long long>(p));
  std::printf("  %8s  %8s\n", "examples", "accuracy");
  for (int64_t c = 0; c < k; ++c) {
    std::printf("%-*s", static_cast<int>(name_w), label(c).c_str());
    if (matrix)
      for (int64_t p = 0; p < k; ++p)
        std::printf("%*lld", cell, static_cast<long long>(r.confusion[c * k + p]));
    std::printf("  %8lld  %8s\n", static_cast<long long>(row_sum(r, c)), accuracy(c).c_str());
  }
  if (matrix) return;
  std::vector<std::pair<int64_t, int64_t>> off;  // (count, true * k + predicted)
  for (int64_t i = 0; i < k * k; ++i)
    if (i / k != i % k && r.confusion[i] > 0) off.emplace_back(r.confusion[i], i);
  std::sort(off.begin(), off.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::printf("\nmost confused (true class -> predicted class)\n");
  for (size_t i = 0; i < std::min<size_t>(20, off.size()); ++i)
    std::printf("  %8lld  %s -> %s\n", static_cast<long long>(off[i].first),
                label(off[i].second / k).c_str(), label(off[i].second % k).c_str());
}

// (rows, classes) float32 logits as a NumPy .npy file (format 1.0, little-endian, C order).
void write_npy(const std::string& path, const std::vector<float>& values, int64_t rows, int64_t cols) {
  std::string header = cat("{'descr': '<f4', 'fortran_order': False, 'shape': (", rows, ", ", cols, "), }");
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(cat("--logits ", path, ": cannot create: ", std::strerror(errno)));
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xFF),
                                static_cast<unsigned char>(header.size() >> 8)};
  bool ok = std::fwrite(magic, 1, 8, f) == 8 && std::fwrite(len, 1, 2, f) == 2 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(values.data(), sizeof(float), values.size(), f) == values.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw Error(cat("--logits ", path, ": cannot write: ", std::strerror(errno)));
}

}  // namespace

void add_eval_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model, checkpoint, data, device = "auto", split = "test";
    int64_t batch = 0;
    std::string logits;
    int threads = 0, views = 0;
    bool json = false, confusion = false, progress = true;
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
  cmd->add_flag("--confusion", args->confusion,
                "Also the confusion matrix and per-class accuracy (class names: data.class_names, else "
                "the checkpoint's)");
  cmd->add_option("--logits", args->logits,
                  "Write every example's logits to FILE as a float32 (examples, classes) .npy array, "
                  "in data set order")
      ->type_name("FILE");
  cmd->add_flag("!--no-progress", args->progress, "No progress bar on a terminal");
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
      resolve_parallel(cfg, comm.size(), 0, false);
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
        // As the trainer's: the backend's host buffers, uploaded without a staging copy.
        spec.host_buffers = [backend](size_t bytes) { return backend->allocate_host(bytes); };
        loaders.push_back(std::make_unique<BatchLoader>(*data, tf, spec));
        view_loaders.push_back(loaders.back().get());
      }
      if (!args->logits.empty()) {  // before the work, not after it
        const std::filesystem::path dir = std::filesystem::absolute(args->logits).parent_path();
        if (!std::filesystem::is_directory(dir))
          throw Error(cat("--logits ", args->logits, ": no directory ", dir.string()));
      }
      Model model(cfg, *backend, comm, ParallelMode::Owt, ParamInit::FromCheckpoint);
      LoadedCheckpoint ck = load_checkpoint(args->checkpoint, model.store(), *backend, false);
      EvalOptions opt;
      opt.confusion = args->confusion;
      opt.logits = !args->logits.empty();
      opt.progress = progress_is_live(args->progress);
      const EvalResult result = evaluate_model(model, cfg, *data, view_loaders, *backend, comm, opt);
      const EvalCounts& c = result.counts;
      if (comm.rank() != 0) return 0;
      if (opt.logits) write_npy(args->logits, result.logits, c.rows, cfg.net.classes);
      // As owt predict: the model file's data.class_names, else the names the checkpoint was
      // trained with (its data set's, or "0", "1", ... for sets without names such as IDX).
      const std::vector<std::string> names =
          cfg.data.class_names.empty() ? checkpoint_class_names(ck.metadata, cfg.net.classes)
                                       : cfg.data.class_names;
      double n = static_cast<double>(c.rows);
      if (args->json) {
        std::printf("{\"checkpoint\": %s, \"split\": \"%s\", \"examples\": %lld, \"step\": %lld, "
                    "\"loss\": %.6f, \"top1\": %.6f, \"top5\": %.6f%s}\n",
                    json_string(args->checkpoint).c_str(), args->split.c_str(),
                    static_cast<long long>(c.rows), static_cast<long long>(ck.step), c.loss_sum / n,
                    c.top1 / n, c.top5 / n, opt.confusion ? confusion_json(result, names).c_str() : "");
      } else {
        const std::string top5 = cfg.net.classes > 5 ? cat(", top-5 ", fixed(100 * c.top5 / n, 2), "%") : "";
        std::printf("%s on %lld %s examples: loss %.4f, top-1 %.2f%%%s\n",
                    args->checkpoint.c_str(), static_cast<long long>(c.rows), args->split.c_str(),
                    c.loss_sum / n, 100 * c.top1 / n, top5.c_str());
        if (opt.confusion) print_confusion(result, names);
      }
      return 0;
    };
  });
}

}  // namespace owt
