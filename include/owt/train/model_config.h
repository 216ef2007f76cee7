// ModelConfig: a model file (docs/MODEL_FILES.md) parsed and checked — the network (layers,
// input, classes, parallel scheme: parallel/'s NetworkSpec), data, augmentation and solver.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "owt/core/shape.h"
#include "owt/data/transform.h"
#include "owt/parallel/network_spec.h"

namespace owt {

struct DataConfig {
  std::string format = "idx";  // idx | cifar10 | cifar100 | folder | packed
  std::string path;
  TransformSpec train;  // augment: normalisation, resize, random crop/flip, lighting
  TransformSpec eval;   // normalisation, resize, centre crop (or test_views views)
  int threads = 0;      // decode threads per worker (0: the trainer's --threads)
  int prefetch = 2;     // batches decoded ahead of the trainer
  bool strict = false;  // unreadable images are errors instead of skipped
  std::vector<int32_t> labels;  // keep only these labels, renumbered 0.. in this order
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
  int64_t batch = 128;  // per worker
  int64_t epochs = 10;
  ScheduleConfig schedule;
};

struct ModelConfig {
  std::string file;  // path it was read from ("" for a string)
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
};

ModelConfig load_model_config(const std::string& path);
ModelConfig parse_model_config(const std::string& text, const std::string& name);

}  // namespace owt
