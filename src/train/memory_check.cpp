// memory_check: the host's free memory (OWT_MEMORY_LIMIT_BYTES, cgroup v2/v1, MemAvailable),
// the workers sharing a host, the exchange that gives every rank the same decision, and the
// one refusal message.
#include "owt/train/memory_check.h"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "owt/train/checkpoint.h"
#include "owt/train/metrics.h"

namespace owt {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string piece;
  std::istringstream in(text);
  while (std::getline(in, piece, sep)) out.push_back(piece);
  return out;
}

// The first integer of a file's text ("max" and garbage: nothing).
std::optional<int64_t> number_in(const std::string& text) {
  const size_t at = text.find_first_of("0123456789");
  if (at == std::string::npos || text.compare(0, 3, "max") == 0) return std::nullopt;
  return static_cast<int64_t>(std::strtoull(text.c_str() + at, nullptr, 10));
}

// `key value` from a memory.stat text.
int64_t stat_value(const std::string& stat, const std::string& key) {
  for (const std::string& line : split(stat, '\n'))
    if (line.compare(0, key.size() + 1, key + " ") == 0)
      return static_cast<int64_t>(std::strtoull(line.c_str() + key.size() + 1, nullptr, 10));
  return 0;
}

// A cgroup v1 limit this large means none (the kernel's "unlimited" is about 2^63, page-rounded).
constexpr int64_t kUnlimited = int64_t{1} << 60;

// One cgroup directory's limit, usage and inactive page cache; nothing when unlimited.
std::optional<CgroupMemory> cgroup_level(const std::string& dir, int version) {
  CgroupMemory m;
  m.version = version;
  const std::optional<int64_t> limit =
      number_in(read_file(dir + (version == 2 ? "/memory.max" : "/memory.limit_in_bytes")));
  if (!limit || *limit >= kUnlimited) return std::nullopt;
  m.limit = *limit;
  m.usage = number_in(read_file(dir + (version == 2 ? "/memory.current" : "/memory.usage_in_bytes")))
                .value_or(0);
  const std::string stat = read_file(dir + "/memory.stat");
  m.inactive_file = stat_value(stat, version == 2 ? "inactive_file" : "total_inactive_file");
  if (version == 1 && m.inactive_file == 0) m.inactive_file = stat_value(stat, "inactive_file");
  return m;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Bytes as two floats, each an integer below 2^24 (exact in float32): up to 2^48 bytes.
void put_bytes(float* out, int64_t bytes) {
  const uint64_t v = static_cast<uint64_t>(std::max<int64_t>(0, bytes));
  out[0] = static_cast<float>(v >> 24);
  out[1] = static_cast<float>(v & 0xFFFFFF);
}
int64_t get_bytes(const float* in) {
  return (static_cast<int64_t>(in[0]) << 24) + static_cast<int64_t>(in[1]);
}

const char* plan_name(ParallelMode mode) {
  return mode == ParallelMode::DataOnly ? "--parallel dp" : "the hybrid plan";
}

std::string gib(int64_t bytes) { return format_bytes(static_cast<double>(bytes)); }

// What a worker needs of host memory: everything on the CPU backend; with a GPU only what
// stays on the host (the device's memory is not checked here). The runtime is at least what
// the process holds now (its libraries and the data sets) plus its threads' buffers.
int64_t host_need(MemoryEstimate& est, int64_t in_use, int threads, bool on_cpu) {
  est.runtime = std::max(est.runtime, in_use + runtime_bytes(threads, 1) - runtime_bytes(0, 1));
  if (on_cpu) return est.peak();
  return est.data_loader + est.transient() + est.runtime;
}

}  // namespace

MemoryRun memory_run_for(const ModelConfig& cfg, int workers, int64_t batch, ParallelMode mode,
                         int threads, int64_t train_examples, int64_t test_examples) {
  MemoryRun run;
  run.workers = workers;
  run.batch = batch;
  run.mode = mode;
  run.threads = std::max(1, threads);
  run.loader_threads = std::max(1, cfg.data.threads);  // as the trainer's loader_spec
  run.prefetch = cfg.data.prefetch;
  run.train_examples = train_examples;
  run.test_examples = test_examples;
  run.checkpoint_chunk = static_cast<int64_t>(kCheckpointChunkBytes);
  return run;
}

std::optional<CgroupMemory> cgroup_memory(const std::string& self_cgroup,
                                          const std::string& mountinfo,
                                          const std::string& fs_prefix) {
  // This process's cgroup path: the v2 line "0::/path", or a v1 line naming "memory".
  std::string path;
  int version = 0;
  for (const std::string& line : split(self_cgroup, '\n')) {
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    bool memory = false;
    for (const std::string& c : split(controllers, ','))
      if (c == "memory") memory = true;
    if (memory) {
      path = line.substr(b + 1), version = 1;
      break;  // a v1 memory controller is the one that limits
    }
    if (line.compare(0, a, "0") == 0 && controllers.empty()) path = line.substr(b + 1), version = 2;
  }
  if (version == 0) return std::nullopt;
  // Its mount: "id parent dev root mountpoint options ... - fstype source superoptions".
  std::string root, mount;
  for (const std::string& line : split(mountinfo, '\n')) {
    const std::vector<std::string> f = split(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 1 >= f.size()) continue;
    const std::string& fstype = f[dash + 1];
    bool ok = version == 2 ? fstype == "cgroup2" : false;
    if (version == 1 && fstype == "cgroup" && dash + 3 < f.size())
      for (const std::string& o : split(f[dash + 3], ','))
        if (o == "memory") ok = true;
    if (ok) {
      root = f[3], mount = f[4];
      break;
    }
  }
  if (mount.empty()) return std::nullopt;
  // The path below the mount's root (a cgroup namespace shows "/" and mounts its own root).
  std::string rel = path;
  if (root != "/" && rel.compare(0, root.size(), root) == 0) rel = rel.substr(root.size());
  if (root != "/" && rel == path) rel = "";
  std::optional<CgroupMemory> tightest;
  for (;;) {
    const std::optional<CgroupMemory> level = cgroup_level(fs_prefix + mount + rel, version);
    if (level && (!tightest || level->free() < tightest->free())) tightest = level;
    if (rel.empty() || rel == "/") break;
    const size_t slash = rel.find_last_of('/');
    rel = slash == std::string::npos || slash == 0 ? "" : rel.substr(0, slash);
  }
  return tightest;
}

int64_t meminfo_available(const std::string& meminfo) {
  for (const std::string& line : split(meminfo, '\n'))
    if (line.compare(0, 13, "MemAvailable:") == 0)
      return static_cast<int64_t>(std::strtoull(line.c_str() + 13, nullptr, 10)) * 1024;  // kB
  return -1;
}

HostMemory read_host_memory() {
  HostMemory h;
  if (const char* env = std::getenv("OWT_MEMORY_LIMIT_BYTES")) {
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end == env || *end != '\0' || v < 0)
      throw Error(cat("OWT_MEMORY_LIMIT_BYTES=", env, ": expected a number of bytes"));
    h.free = v;
    h.source = MemorySource::Override;
    return h;
  }
  h.free = std::max<int64_t>(0, meminfo_available(read_file("/proc/meminfo")));
  const std::optional<CgroupMemory> cg =
      cgroup_memory(read_file("/proc/self/cgroup"), read_file("/proc/self/mountinfo"));
  if (cg && cg->free() < h.free) {
    h.free = cg->free();
    h.limit = cg->limit;
    h.source = cg->version == 2 ? MemorySource::CgroupV2 : MemorySource::CgroupV1;
  }
  return h;
}

int64_t resident_bytes() {
  std::istringstream in(read_file("/proc/self/statm"));
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

int64_t peak_resident_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

std::string memory_refusal(const ModelConfig& cfg, ParallelMode mode, const MemoryEstimate& est,
                           const WorkerMemory& w, std::optional<int64_t> hybrid_need,
                           bool on_cpu) {
  const int64_t named = est.parameters + est.gradients + est.optimizer_state +
                        est.activation_total() + est.communication;
  const std::string mpi = est.communication > 0 ? cat(", MPI buffers ", gib(est.communication)) : "";
  std::string source;
  switch (w.host.source) {
    case MemorySource::MemAvailable: source = cat("MemAvailable ", gib(w.host.free)); break;
    case MemorySource::CgroupV2:
      source = cat("cgroup memory.max ", gib(w.host.limit), ", ", gib(w.host.free), " of it free");
      break;
    case MemorySource::CgroupV1:
      source = cat("cgroup memory.limit_in_bytes ", gib(w.host.limit), ", ", gib(w.host.free),
                   " of it free");
      break;
    case MemorySource::Override: source = cat("OWT_MEMORY_LIMIT_BYTES ", gib(w.host.free)); break;
  }
  const std::string where = w.rank0_host ? "this host" : cat("the host of rank ", w.rank);
  const std::string share = w.workers_on_host > 1 ? cat(w.workers_on_host, " workers on ", where, " have ")
                                                  : cat(where, " has ");
  std::string advice;
  if (mode == ParallelMode::DataOnly && hybrid_need)
    advice = cat("; use fewer workers per host or the hybrid plan (about ", gib(*hybrid_need),
                 " per worker)");
  else
    advice = "; use more hosts, fewer workers per host or a smaller --batch";
  advice += ", or --skip-memory-check to start anyway";
  const std::string terms =
      on_cpu ? cat("parameters ", gib(est.parameters), ", gradients ", gib(est.gradients),
                   ", momentum ", gib(est.optimizer_state), ", activations ",
                   gib(est.activation_total()), mpi, ", runtime, data and buffers ",
                   gib(std::max<int64_t>(0, w.need - named)))
             : "runtime, data and buffers; the GPU's memory is not checked";
  return cat(cfg.file, ": ", plan_name(mode), " needs about ", gib(w.need), " of host memory per worker (",
             terms, ") but ",
             share, gib(w.have()), w.workers_on_host > 1 ? " each" : "", " (", source,
             w.workers_on_host > 1 ? cat(" / ", w.workers_on_host) : "", " + ", gib(w.in_use),
             " in use)", advice);
}

MemoryEstimate check_memory(const ModelConfig& cfg, const TrainOptions& opt, Backend& backend,
                            Communicator& comm, int64_t train_examples, int64_t test_examples) {
  const int threads = omp_get_max_threads();
  const MemoryRun run = memory_run_for(cfg, comm.size(), cfg.solver.batch, opt.mode, threads,
                                       train_examples, test_examples);
  MemoryEstimate est = estimate_memory(cfg.net, run, comm.rank());
  const bool on_cpu = backend.device() == Device::CPU;
  const int64_t in_use = resident_bytes();
  const int64_t need = host_need(est, in_use, threads, on_cpu);
  if (opt.skip_memory_check) return est;

  // Every rank's numbers to every rank: the same decision everywhere.
  constexpr int kFields = 12;
  const int K = comm.size();
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  const uint64_t h = fnv1a(name);
  const HostMemory host = read_host_memory();
  float mine[kFields];
  for (int i = 0; i < 4; ++i) mine[i] = static_cast<float>((h >> (16 * i)) & 0xFFFF);
  put_bytes(mine + 4, need);
  put_bytes(mine + 6, in_use);
  put_bytes(mine + 8, host.free);
  put_bytes(mine + 10, host.limit);
  std::vector<float> all(static_cast<size_t>(kFields) * K);
  comm.all_gather(mine, all.data(), std::vector<size_t>(K, kFields));
  // host.source cannot ride in a float pair; one more small gather.
  float source = static_cast<float>(host.source);
  std::vector<float> sources(K);
  comm.all_gather(&source, sources.data(), std::vector<size_t>(K, 1));

  std::optional<WorkerMemory> worst;
  for (int r = 0; r < K; ++r) {
    const float* f = all.data() + static_cast<size_t>(kFields) * r;
    WorkerMemory w;
    w.rank = r;
    w.need = get_bytes(f + 4);
    w.in_use = get_bytes(f + 6);
    w.host.free = get_bytes(f + 8);
    w.host.limit = get_bytes(f + 10);
    w.host.source = static_cast<MemorySource>(static_cast<int>(sources[r]));
    w.workers_on_host = 0;
    for (int q = 0; q < K; ++q)
      w.workers_on_host += std::equal(f, f + 4, all.data() + static_cast<size_t>(kFields) * q);
    w.rank0_host = std::equal(f, f + 4, all.data());
    if (w.need > w.have() && (!worst || w.need - w.have() > worst->need - worst->have())) worst = w;
  }
  if (!worst) return est;

  if (comm.rank() == 0) {
    const MemoryEstimate theirs = estimate_memory(cfg.net, run, worst->rank);
    std::optional<int64_t> hybrid_need;
    if (opt.mode == ParallelMode::DataOnly) {
      MemoryRun owt_run = run;
      owt_run.mode = ParallelMode::Owt;
      MemoryEstimate hybrid = estimate_memory_largest(cfg.net, owt_run);
      hybrid_need = host_need(hybrid, worst->in_use, threads, on_cpu);
    }
    throw Error(memory_refusal(cfg, opt.mode, theirs, *worst, hybrid_need, on_cpu));
  }
  // Rank 0 ends every rank with the message (Communicator::abort_all); wait for it, and
  // fail on our own only if that never comes.
  std::this_thread::sleep_for(std::chrono::seconds(60));
  throw Error(memory_refusal(cfg, opt.mode, estimate_memory(cfg.net, run, worst->rank), *worst,
                             std::nullopt, on_cpu));
}

}  // namespace owt
