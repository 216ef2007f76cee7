// Checkpoints: one consolidated safetensors file whatever the worker count (model-parallel
// shards placed as whole tensors, PyTorch names and layouts), optimizer state beside the
// weights as `optim.<param>.momentum_buffer`, buffers (BatchNorm's running statistics; rank 0's
// copy, no momentum) under their own names, and run metadata. Rank 0 writes, atomically,
// streaming every worker's rows in bounded pieces; each worker reads only its own rows.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/nn/param_store.h"
#include "owt/train/checkpoint_stream.h"
#include "owt/train/model_config.h"

namespace owt {

struct CheckpointMeta {
  const ModelConfig& cfg;
  int64_t step = 0, epoch = 0;
  bool best = false;                     // also write best.safetensors
  std::vector<std::string> class_names;  // saved for `owt predict`
  bool progress = false;                 // rank 0 may draw a bar (files over 1 GiB; progress_is_live)
  size_t chunk_bytes = kCheckpointChunkBytes;  // the most that moves between workers at once
};

// The class names a checkpoint was trained with ("class_names" metadata, one per line), or
// "0", "1", ... when it has none.
std::vector<std::string> checkpoint_class_names(const std::map<std::string, std::string>& metadata,
                                                int64_t classes);

// Collective: `local` (p.value, p.state or p.grad of this worker) as the whole tensor of
// p.full_shape, on every worker (host memory). For tests and small tensors: checkpoints do not
// gather.
std::vector<float> gather_whole(const Param& p, const Tensor& local, Backend& backend,
                                Communicator& comm);

// Collective: every worker calls it; rank 0 writes `path` (StWriter), its own rows and the
// rows every other worker sends it point to point, at most meta.chunk_bytes at a time. Other
// workers return once their rows are sent. No worker holds a tensor it does not own; memory
// beyond the params is a few chunks.
void save_checkpoint(const std::string& path, const ParamStore& store, const CheckpointMeta& meta,
                     Backend& backend, Communicator& comm);
// <run_dir>/checkpoints/last.safetensors, and best.safetensors when meta.best.
void save_run_checkpoints(const std::string& run_dir, const ParamStore& store,
                          const CheckpointMeta& meta, Backend& backend, Communicator& comm);

// --save-every: <run_dir>/checkpoints/step-<step>.safetensors, copied to last.safetensors; only
// the newest `keep` step files are kept.
void save_step_checkpoint(const std::string& run_dir, const ParamStore& store,
                          const CheckpointMeta& meta, Backend& backend, Communicator& comm, int keep);

struct LoadedCheckpoint {
  std::map<std::string, std::string> metadata;
  int64_t step = 0, epoch = 0;
};

// Loads every param's value (and optimizer state when `with_state`) and every buffer from
// `path`, resharding to this worker's slice: every worker opens the file itself (one host or a
// shared file system) and reads only its own rows (StReader), at most `chunk_bytes` at a time.
// Every param and buffer must be present with its full shape; errors name the tensor.
LoadedCheckpoint load_checkpoint(const std::string& path, const ParamStore& store, Backend& backend,
                                 bool with_state, size_t chunk_bytes = kCheckpointChunkBytes);

// What --init-from did with each tensor.
struct InitFromReport {
  std::vector<std::string> loaded;          // model param <- checkpoint tensor
  std::vector<std::string> shape_mismatch;  // present, other shape: param keeps its fresh init
  std::vector<std::string> missing;         // model params the checkpoint lacks: fresh init
  std::vector<std::string> unused;          // checkpoint tensors no param took
};

// Fine-tuning: copies every checkpoint tensor whose (renamed) name and shape match a model
// param or buffer into it; everything else keeps its fresh initialisation. `renames` are OLD=NEW pairs:
// a checkpoint tensor named OLD, or OLD.<suffix>, is read as NEW (NEW.<suffix>).
// Optimizer state is not loaded. Reads as load_checkpoint does (this worker's rows only).
InitFromReport init_from_checkpoint(const std::string& path, const ParamStore& store,
                                    const std::vector<std::string>& renames, Backend& backend,
                                    size_t chunk_bytes = kCheckpointChunkBytes);

// The newest checkpoint to resume from: PATH itself if it is a file, else
// PATH/checkpoints/last.safetensors. Errors name the path.
std::string resolve_resume_path(const std::string& path);

}  // namespace owt
