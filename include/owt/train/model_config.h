// ModelConfig: a model file (docs/MODEL_FILES.md) parsed and checked — the network (layers,
// input, classes, parallel scheme: parallel/'s NetworkSpec), data, augmentation and solver.
// Every size is bounded (core/limits.h) and every combination of keys that would do nothing
// or contradict another key is refused, with the file, line and field.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "owt/core/shape.h"
#include "owt/data/transform.h"
#include "owt/parallel/network_spec.h"

namespace owt {

struct DataConfig {
  std::string format = "idx";  // idx | cifar10 | cifar100 | folder | packed | synthetic
  std::string path;            // empty for synthetic (it has no files)
  // synthetic only (data/synthetic_dataset.h; shapes from input, classes from classes):
  int64_t train_examples = 0, test_examples = 0;  // examples per split
  double noise = 0.3;                              // per-pixel Gaussian noise, std dev
  int64_t shift = 2;                               // largest random shift, pixels
  std::string class_frequency = "uniform";         // uniform (i mod classes) | zipf
  TransformSpec train;  // augment: normalisation, resize, random crop/flip, lighting
  TransformSpec eval;   // normalisation, resize, centre crop (or test_views views)
  int threads = 0;      // decode threads per worker (0: the trainer's --threads)
  int prefetch = 2;     // batches decoded ahead of the trainer
  bool strict = false;  // unreadable images are errors instead of skipped
  std::vector<int32_t> labels;  // keep only these labels, renumbered 0.. in this order
  // Names of the model's classes (`classes` of them, in class order), shown by `owt predict`
  // and kept in checkpoints; empty: the data set's own names (or "0", "1", ...).
  std::vector<std::string> class_names;
};

struct ScheduleConfig {
  std::string type = "constant";  // constant | step | cosine
  double warmup_epochs = 0;       // linear warm-up from 0 over this many epochs
  std::vector<double> milestones; // step: epochs at which lr *= gamma
  double gamma = 0.1;
  double min_lr = 0;              // cosine floor
};

struct SolverConfig {
  std::string type = "sgd";
  double lr = 0.01, momentum = 0.9, weight_decay = 0;
  bool nesterov = false;       // PyTorch's SGD(nesterov=True): w -= lr * (g' + momentum * v)
  int64_t batch = 128;  // per worker
  int64_t epochs = 10;
  ScheduleConfig schedule;
};

struct ModelConfig {
  std::string file;  // path it was read from (or the name given to parse_model_config)
  std::string text;  // the file's text, saved in run directories and checkpoints
  std::string name;
  NetworkSpec net;   // layers, input (C, H, W), classes, parallel scheme
  DataConfig data;
  SolverConfig solver;
  // GPU arithmetic: "tf32" (fp32 storage, TF32 tensor-core maths, PyTorch's default for
  // convolutions), "fp32-strict" (no TF32), "bf16" (bf16 compute, fp32 master weights and
  // optimizer state). The CPU backend always computes in fp32.
  std::string precision = "tf32";
  uint64_t seed = 1;
  // False only for a ModelParts::Network parse of a file without a `solver:` section (then
  // solver holds its defaults and solver.batch is 0: the caller must supply a batch).
  bool has_solver = true;
};

// What a model file must hold. All: a file to train, evaluate or predict with (name, input,
// classes, layers, data and solver). Network: a file `owt plan` reads, where data and solver
// may be absent (when present they are checked all the same).
enum class ModelParts { All, Network };

// Reads and checks a model file; every error names the file, line and field.
ModelConfig load_model_config(const std::string& path, ModelParts parts = ModelParts::All);
ModelConfig parse_model_config(const std::string& text, const std::string& name,
                               ModelParts parts = ModelParts::All);

}  // namespace owt
