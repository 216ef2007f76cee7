// Trainer: the epoch loop — data, the hybrid step, optimizer and schedule, evaluation after
// every epoch, metrics (metrics.jsonl and a TensorBoard event file), progress and checkpoints.
// One per worker; rank 0 owns the run directory.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/parallel/plan.h"
#include "owt/train/model_config.h"

namespace owt {

struct TrainOptions {
  std::string data_dir;       // overrides data.path when set
  int64_t epochs = 0;         // 0: the model file's
  int64_t max_steps = 0;      // 0: no limit
  int64_t batch = 0;          // per worker; 0: the model file's
  double lr = 0;              // 0: the model file's
  int64_t seed = -1;          // -1: the model file's
  std::string out_dir;        // "" : runs/<name>-<time>
  int threads = 0;            // 0: all cores
  ParallelMode mode = ParallelMode::Owt;
  int64_t save_every = 0;     // checkpoint every N steps (0: only per epoch)
  int keep_checkpoints = 3;   // step checkpoints kept by --save-every
  std::string resume;         // run directory or checkpoint to continue
  std::string init_from;      // checkpoint to fine-tune from
  std::vector<std::string> renames;  // OLD=NEW for init_from
  bool strict = false;        // unreadable images are errors (overrides data.strict)
  bool progress = true;
  // Start even when the memory estimate exceeds this host's share (train/memory_check.h).
  bool skip_memory_check = false;
  std::string command_line;   // as typed (shell-quoted), for the run's TensorBoard text summary
};

struct TrainSummary {
  std::string run_dir;
  double final_top1 = 0, final_top5 = 0, best_top1 = 0, final_loss = 0;
  double train_images_per_s = 0, seconds = 0;
  int64_t steps = 0;
  std::map<std::string, uint64_t> comm_bytes_per_step;  // this worker, per op kind, last epoch
  int64_t memory_estimate = 0;  // this worker's peak bytes by the memory model (memory_check.h)
};

// Applies the command-line overrides to a model config (batch, epochs, lr, seed, data path).
void apply_overrides(ModelConfig& cfg, const TrainOptions& opt);

TrainSummary train(const ModelConfig& cfg, const TrainOptions& opt, Backend& backend,
                   Communicator& comm);

}  // namespace owt
