// Checkpoint save (gather shards, rank 0 writes safetensors atomically) and load (validate
// names and shapes, slice this worker's shard, copy to the device).
#include "owt/train/checkpoint.h"

#include <filesystem>

#include "owt/core/error.h"
#include "owt/core/safetensors.h"

namespace owt {
namespace {

const char* kStatePrefix = "optim.";
const char* kStateSuffix = ".momentum_buffer";

// The whole tensor on every worker: a shard is all-gathered along its axis (axis 0 only).
std::vector<float> gather_whole(const Param& p, const Tensor& local, Backend& backend,
                                Communicator& comm) {
  std::vector<float> mine(local.numel());
  backend.to_host(local.f32(), mine.data(), mine.size() * sizeof(float));
  if (p.layout == Layout::Replicated || comm.size() == 1) return mine;
  OWT_CHECK(p.axis == 0, "checkpoints gather shards along axis 0 only");
  std::vector<float> whole(p.full_shape.numel());
  comm.all_gather(mine.data(), whole.data(),
                  shard_counts(p.full_shape[0], comm.size(), p.full_shape.numel() / p.full_shape[0]));
  return whole;
}

}  // namespace

void save_checkpoint(const std::string& path, const ParamStore& store, const CheckpointMeta& meta,
                     Backend& backend, Communicator& comm) {
  StFile file;
  for (const Param* p : store.params()) {
    std::vector<float> value = gather_whole(*p, p->value, backend, comm);
    std::vector<float> state = gather_whole(*p, p->state, backend, comm);
    file.tensors.push_back(st_f32(p->name, p->full_shape.dims(), value.data()));
    file.tensors.push_back(
        st_f32(kStatePrefix + p->name + kStateSuffix, p->full_shape.dims(), state.data()));
  }
  if (comm.rank() != 0) return;
  file.metadata = {{"format", "owt-checkpoint-1"},
                   {"owt_version", OWT_VERSION},
                   {"model_name", meta.cfg.name},
                   {"model", meta.cfg.text},
                   {"step", std::to_string(meta.step)},
                   {"epoch", std::to_string(meta.epoch)},
                   {"seed", std::to_string(meta.cfg.seed)}};
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_safetensors(path, file);
}

void save_run_checkpoints(const std::string& run_dir, const ParamStore& store,
                          const CheckpointMeta& meta, Backend& backend, Communicator& comm) {
  std::string dir = run_dir + "/checkpoints/";
  save_checkpoint(dir + "last.safetensors", store, meta, backend, comm);
  if (meta.best && comm.rank() == 0) {
    // Copy then rename, so best.safetensors is always a whole file.
    std::filesystem::copy_file(dir + "last.safetensors", dir + "best.safetensors.tmp",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(dir + "best.safetensors.tmp", dir + "best.safetensors");
  }
}

LoadedCheckpoint load_checkpoint(const std::string& path, const ParamStore& store, Backend& backend,
                                 bool with_state) {
  StFile file = read_safetensors(path);
  auto load_one = [&](const Param& p, const std::string& name, const Tensor& dst) {
    const StTensor* t = file.find(name);
    if (!t) throw Error(cat(path, ": tensor '", name, "' is missing (the model needs it with shape ",
                            p.full_shape.str(), ")"));
    if (t->shape != p.full_shape.dims())
      throw Error(cat(path, ": tensor '", name, "' has shape ", Shape(t->shape).str(),
                      " but the model expects ", p.full_shape.str()));
    std::vector<float> whole = st_as_f32(*t, path);
    int64_t row = p.full_shape.numel() / std::max<int64_t>(1, p.full_shape[0]);
    int64_t begin = p.layout == Layout::Sharded ? p.begin * row : 0;
    backend.from_host(whole.data() + begin, dst.f32(), dst.numel() * sizeof(float));
  };
  for (const Param* p : store.params()) {
    load_one(*p, p->name, p->value);
    if (with_state) load_one(*p, kStatePrefix + p->name + kStateSuffix, p->state);
  }
  LoadedCheckpoint out;
  out.metadata = file.metadata;
  auto number = [&](const char* key) -> int64_t {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) return 0;
    try {
      return std::stoll(it->second);
    } catch (...) {
      throw Error(cat(path, ": metadata '", key, "' is not a number: '", it->second, "'"));
    }
  };
  out.step = number("step");
  out.epoch = number("epoch");
  return out;
}

}  // namespace owt
