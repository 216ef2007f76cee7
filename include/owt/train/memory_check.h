// memory_check: before `owt train` builds its model, every worker's memory estimate against
// what its host offers (cgroup limit or MemAvailable, shared by the workers on the host); a run
// that would not fit ends on every rank with one message naming both numbers.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/parallel/memory_model.h"
#include "owt/train/model_config.h"
#include "owt/train/trainer.h"

namespace owt {

// The run's side of the memory model for `cfg` (data.prefetch, data.threads, the checkpoint
// chunk) at K workers of `batch` rows with `threads` compute threads each. Example counts
// (for the loaders' orders) are 0 when unknown.
MemoryRun memory_run_for(const ModelConfig& cfg, int workers, int64_t batch, ParallelMode mode,
                         int threads, int64_t train_examples = 0, int64_t test_examples = 0);

// Where a host's free memory was read.
enum class MemorySource { MemAvailable = 0, CgroupV2 = 1, CgroupV1 = 2, Override = 3 };

struct HostMemory {
  int64_t free = 0;    // bytes the workers on this host may still take, together
  int64_t limit = 0;   // a cgroup's limit (0 otherwise)
  MemorySource source = MemorySource::MemAvailable;
};

// A cgroup's memory: its limit (-1: none), what it uses, and the part of that which is
// inactive page cache (reclaimable without swapping).
struct CgroupMemory {
  int64_t limit = -1, usage = 0, inactive_file = 0;
  int version = 2;
  int64_t free() const { return std::max<int64_t>(0, limit - usage + inactive_file); }
};

// The memory cgroup of this process from the text of /proc/self/cgroup and
// /proc/self/mountinfo, its files read under `fs_prefix` + the mount point: the tightest limit
// on the way up to the mount's root (v2 memory.max, v1 memory.limit_in_bytes). Nothing when no
// level is limited.
std::optional<CgroupMemory> cgroup_memory(const std::string& self_cgroup,
                                          const std::string& mountinfo,
                                          const std::string& fs_prefix = "");
// MemAvailable of /proc/meminfo's text, in bytes; -1 when absent.
int64_t meminfo_available(const std::string& meminfo);

// This host: OWT_MEMORY_LIMIT_BYTES when set (a test and override knob: the bytes free on this
// host), else MemAvailable, or less when a cgroup limit leaves less.
HostMemory read_host_memory();

// This process's resident set now (/proc/self/statm) and its peak (getrusage), in bytes.
int64_t resident_bytes();
int64_t peak_resident_bytes();

// What one worker needs and has, as all ranks see it after the exchange.
struct WorkerMemory {
  int rank = 0;
  int64_t need = 0;     // the estimate's peak, with what the process holds now for the runtime
  int64_t in_use = 0;   // resident now (the process, its libraries, the data sets)
  HostMemory host;
  int workers_on_host = 1;  // ranks whose host name hashes like this one's
  bool rank0_host = true;   // it shares rank 0's host (the one that prints)
  int64_t have() const { return in_use + host.free / workers_on_host; }
};

// The refusal: "<file>: the hybrid plan needs about ... but 4 workers on this host have ...",
// with the hybrid plan's need per worker as advice for a refused --parallel dp. On a GPU
// (on_cpu false) only the host's part is checked, and the message says so.
std::string memory_refusal(const ModelConfig& cfg, ParallelMode mode, const MemoryEstimate& est,
                           const WorkerMemory& worker, std::optional<int64_t> hybrid_need,
                           bool on_cpu = true);

// Collective, before the model is built: each worker's estimate (train and test sets of the
// given sizes) against its share of its host's memory. When some worker would not fit, rank 0
// throws the refusal and the others wait for its abort, so the message appears once. Skipped
// (no collective) with opt.skip_memory_check. Returns this worker's estimate.
MemoryEstimate check_memory(const ModelConfig& cfg, const TrainOptions& opt, Backend& backend,
                            Communicator& comm, int64_t train_examples, int64_t test_examples);

}  // namespace owt
