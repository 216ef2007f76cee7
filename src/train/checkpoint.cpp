// Checkpoint save (rank 0 streams every worker's rows into one safetensors file, atomically)
// and load (validate names and shapes, read only this worker's rows) of params, momentum and
// buffers; the pieces move in checkpoint_stream.cpp.
#include "owt/train/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <utility>

#include "owt/core/error.h"
#include "owt/core/safetensors.h"
#include "owt/train/checkpoint_stream.h"
#include "owt/train/metrics.h"

namespace owt {
namespace {

const char* kStatePrefix = "optim.";
const char* kStateSuffix = ".momentum_buffer";
const double kCheckpointProgressBytes = 1024.0 * 1024 * 1024;  // a bar above 1 GiB

}  // namespace

// Shards are all-gathered, then each worker's block (outer, local_r, inner) is placed at
// [.., begin_r : end_r, ..] of the whole.
std::vector<float> gather_whole(const Param& p, const Tensor& local, Backend& backend,
                                Communicator& comm) {
  std::vector<float> mine(local.numel());
  backend.to_host(local.f32(), mine.data(), mine.size() * sizeof(float));
  if (!p.sharded() || comm.size() == 1) return mine;
  const int K = comm.size();
  const ShardView v = p.shard_view();
  const int64_t full = v.full;
  std::vector<float> blocks(p.full_shape.numel()), whole(p.full_shape.numel());
  comm.all_gather(mine.data(), blocks.data(), shard_counts(full, K, v.outer * v.inner));
  size_t offset = 0;
  for (int r = 0; r < K; ++r) {
    const int64_t begin = shard_begin(full, r, K), n = shard_end(full, r, K) - begin;
    for (int64_t o = 0; o < v.outer; ++o)
      std::copy_n(blocks.data() + offset + o * n * v.inner, n * v.inner,
                  whole.data() + (o * full + begin) * v.inner);
    offset += v.outer * n * v.inner;
  }
  return whole;
}

void save_checkpoint(const std::string& path, const ParamStore& store, const CheckpointMeta& meta,
                     Backend& backend, Communicator& comm) {
  // Every tensor, value then momentum per param, then every buffer's value; sources[i] is
  // where tensor i comes from.
  std::vector<StTensorInfo> tensors;
  std::vector<std::pair<const Param*, const Tensor*>> sources;
  double bytes = 0;  // a bar for files over 1 GiB
  for (const Param* p : store.params()) {
    tensors.push_back(StTensorInfo{p->name, "F32", p->full_shape.dims()});
    tensors.push_back(StTensorInfo{kStatePrefix + p->name + kStateSuffix, "F32", p->full_shape.dims()});
    sources.emplace_back(p, &p->value);
    sources.emplace_back(p, &p->state);
    bytes += 2.0 * 4 * p->full_shape.numel();
  }
  for (const Param* b : store.buffers()) {
    tensors.push_back(StTensorInfo{b->name, b->integer ? "I64" : "F32", b->full_shape.dims()});
    sources.emplace_back(b, &b->value);
    bytes += (b->integer ? 8.0 : 4.0) * b->full_shape.numel();
  }
  ProgressBar bar(cat("saving ", std::filesystem::path(path).filename().string()), bytes,
                  meta.progress && comm.rank() == 0 && bytes > kCheckpointProgressBytes,
                  ProgressBar::Units::Bytes, 0);
  std::unique_ptr<StWriter> writer;
  if (comm.rank() == 0) {
    std::map<std::string, std::string> metadata = {{"format", "owt-checkpoint-1"},
                                                   {"owt_version", OWT_VERSION},
                                                   {"model_name", meta.cfg.name},
                                                   {"model", meta.cfg.text},
                                                   {"step", std::to_string(meta.step)},
                                                   {"epoch", std::to_string(meta.epoch)},
                                                   {"seed", std::to_string(meta.cfg.seed)}};
    std::string names;
    for (const std::string& n : meta.class_names) names += (names.empty() ? "" : "\n") + n;
    if (!names.empty()) metadata["class_names"] = names;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    writer = std::make_unique<StWriter>(path, metadata, tensors);
  }
  // In file order (every worker derives it), so rank 0 writes the file front to back.
  double done = 0;
  auto written = [&](uint64_t n) { bar.update(done += static_cast<double>(n)); };
  for (size_t i : st_file_order(tensors))
    write_param_tensor(writer.get(), i, *sources[i].first, *sources[i].second, backend, comm,
                       meta.chunk_bytes, written);
  if (!writer) return;
  bar.status(cat("syncing ", format_bytes(bytes), " to ", path));
  writer->commit();
}

namespace {
// Copy then rename, so `to` is always a whole file.
void copy_atomically(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to + ".tmp", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(to + ".tmp", to);
}
}  // namespace

void save_run_checkpoints(const std::string& run_dir, const ParamStore& store,
                          const CheckpointMeta& meta, Backend& backend, Communicator& comm) {
  std::string dir = run_dir + "/checkpoints/";
  save_checkpoint(dir + "last.safetensors", store, meta, backend, comm);
  if (meta.best && comm.rank() == 0) copy_atomically(dir + "last.safetensors", dir + "best.safetensors");
}

void save_step_checkpoint(const std::string& run_dir, const ParamStore& store,
                          const CheckpointMeta& meta, Backend& backend, Communicator& comm, int keep) {
  namespace fs = std::filesystem;
  std::string dir = run_dir + "/checkpoints/";
  std::string path = cat(dir, "step-", meta.step, ".safetensors");
  save_checkpoint(path, store, meta, backend, comm);
  if (comm.rank() != 0) return;
  copy_atomically(path, dir + "last.safetensors");
  std::vector<std::pair<int64_t, fs::path>> steps;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) == 0 && e.path().extension() == ".safetensors")
      steps.emplace_back(std::atoll(name.c_str() + 5), e.path());
  }
  std::sort(steps.rbegin(), steps.rend());
  for (size_t i = static_cast<size_t>(std::max(keep, 1)); i < steps.size(); ++i) fs::remove(steps[i].second);
}

LoadedCheckpoint load_checkpoint(const std::string& path, const ParamStore& store, Backend& backend,
                                 bool with_state, size_t chunk_bytes) {
  const StReader file(path);
  auto load_one = [&](const Param& p, const std::string& name, const Tensor& dst) {
    const StTensorInfo* t = file.find(name);
    if (!t) throw Error(cat(path, ": tensor '", name, "' is missing (the model needs it with shape ",
                            p.full_shape.str(), ")"));
    if (t->shape != p.full_shape.dims())
      throw Error(cat(path, ": tensor '", name, "' has shape ", Shape(t->shape).str(),
                      " but the model expects ", p.full_shape.str()));
    read_param_tensor(file, *t, p, dst, backend, chunk_bytes);
  };
  for (const Param* p : store.params()) {
    load_one(*p, p->name, p->value);
    if (with_state) load_one(*p, kStatePrefix + p->name + kStateSuffix, p->state);
  }
  for (const Param* b : store.buffers()) load_one(*b, b->name, b->value);
  LoadedCheckpoint out;
  out.metadata = file.metadata();
  auto number = [&](const char* key) -> int64_t {
    auto it = out.metadata.find(key);
    if (it == out.metadata.end()) return 0;
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

InitFromReport init_from_checkpoint(const std::string& path, const ParamStore& store,
                                    const std::vector<std::string>& renames, Backend& backend,
                                    size_t chunk_bytes) {
  const StReader file(path);
  std::vector<std::pair<std::string, std::string>> rules;
  for (const std::string& r : renames) {
    size_t eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size())
      throw Error(cat("--rename ", r, ": expected OLD=NEW"));
    rules.emplace_back(r.substr(0, eq), r.substr(eq + 1));
  }
  auto renamed = [&](const std::string& name) {
    for (const auto& [from, to] : rules) {
      if (name == from) return to;
      if (name.compare(0, from.size() + 1, from + ".") == 0) return to + name.substr(from.size());
    }
    return name;
  };
  std::map<std::string, const StTensorInfo*> by_model_name;
  InitFromReport report;
  for (const StTensorInfo& t : file.tensors()) {
    if (t.name.compare(0, std::string(kStatePrefix).size(), kStatePrefix) == 0) continue;
    by_model_name[renamed(t.name)] = &t;
  }
  std::set<const StTensorInfo*> taken;
  std::vector<const Param*> wanted(store.params().begin(), store.params().end());
  wanted.insert(wanted.end(), store.buffers().begin(), store.buffers().end());
  for (const Param* p : wanted) {
    auto it = by_model_name.find(p->name);
    if (it == by_model_name.end()) {
      report.missing.push_back(p->name);
      continue;
    }
    taken.insert(it->second);
    if (it->second->shape != p->full_shape.dims()) {
      report.shape_mismatch.push_back(cat(p->name, " (checkpoint ", Shape(it->second->shape).str(),
                                          ", model ", p->full_shape.str(), ")"));
      continue;
    }
    read_param_tensor(file, *it->second, *p, p->value, backend, chunk_bytes);
    report.loaded.push_back(it->second->name == p->name ? p->name : cat(p->name, " <- ", it->second->name));
  }
  for (const StTensorInfo& t : file.tensors())
    if (!taken.count(&t) && t.name.compare(0, std::string(kStatePrefix).size(), kStatePrefix) != 0)
      report.unused.push_back(t.name);
  return report;
}

std::vector<std::string> checkpoint_class_names(const std::map<std::string, std::string>& metadata,
                                                int64_t classes) {
  std::vector<std::string> names;
  auto it = metadata.find("class_names");
  if (it != metadata.end()) {
    size_t start = 0;
    for (size_t end; (end = it->second.find('\n', start)) != std::string::npos; start = end + 1)
      names.push_back(it->second.substr(start, end - start));
    names.push_back(it->second.substr(start));
  }
  for (int64_t i = static_cast<int64_t>(names.size()); i < classes; ++i) names.push_back(std::to_string(i));
  return names;
}

std::string resolve_resume_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(path)) return path;
  std::string last = path + "/checkpoints/last.safetensors";
  if (fs::is_directory(path) && fs::is_regular_file(last)) return last;
  throw Error(cat("--resume ", path, ": neither a checkpoint file nor a run directory with ",
                  "checkpoints/last.safetensors"));
}

}  // namespace owt
