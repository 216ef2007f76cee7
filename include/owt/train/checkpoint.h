// Checkpoints: one consolidated safetensors file whatever the worker count (model-parallel
// shards gathered into whole tensors, PyTorch names and layouts), optimizer state beside the
// weights as `optim.<param>.momentum_buffer`, and run metadata. Rank 0 writes, atomically.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/nn/param_store.h"
#include "owt/train/model_config.h"

namespace owt {

struct CheckpointMeta {
  const ModelConfig& cfg;
  int64_t step = 0, epoch = 0;
  bool best = false;  // also write best.safetensors
};

// Collective: every worker calls it; rank 0 writes `path`.
void save_checkpoint(const std::string& path, const ParamStore& store, const CheckpointMeta& meta,
                     Backend& backend, Communicator& comm);
// <run_dir>/checkpoints/last.safetensors, and best.safetensors when meta.best.
void save_run_checkpoints(const std::string& run_dir, const ParamStore& store,
                          const CheckpointMeta& meta, Backend& backend, Communicator& comm);

struct LoadedCheckpoint {
  std::map<std::string, std::string> metadata;
  int64_t step = 0, epoch = 0;
};

// Loads every param's value (and optimizer state when `with_state`) from `path`, resharding to
// this worker's slice. Every param must be present with its full shape; errors name the tensor.
LoadedCheckpoint load_checkpoint(const std::string& path, const ParamStore& store, Backend& backend,
                                 bool with_state);

}  // namespace owt
