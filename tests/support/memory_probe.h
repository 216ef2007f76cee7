// Measuring memory in tests: the peak resident set of finished child processes (owt runs, or
// mpirun and its ranks) against `owt plan --json`'s estimate, and a model with a wide head.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "support/cli_runner.h"

namespace owt::test {

// run_process(args) from a child of its own, so that getrusage(RUSAGE_CHILDREN) there sees only
// this command's processes: `peak` is the largest peak resident set (ru_maxrss) of any of them
// (owt, or mpirun and its ranks), in bytes.
struct MeasuredRun {
  CliResult result;
  int64_t peak = 0;
};
MeasuredRun run_measured(const std::vector<std::string>& args, int timeout_s = 300);

// Whether AddressSanitizer's runtime is loaded in this process (tools/sanitize.sh builds the
// tests and owt with it): peak resident sets then measure its shadow memory and quarantine,
// not owt's, so RSS comparisons skip.
bool address_sanitizer_loaded();

// `owt plan MODEL --workers K --batch B --threads T --json`: the memory peak per worker of
// the hybrid plan (or of data parallelism), in bytes; 0 and a test failure when plan fails.
int64_t planned_peak(const std::string& model, int workers, int64_t batch, int threads,
                     bool data_parallel = false);

// A model for 1x8x8 IDX images (write_idx_dataset with h = w = 8): linear 64 (model-parallel,
// the transition at the input), relu, a linear head of `classes` outputs, the sharded loss;
// the allgather transition, batch `batch`, one epoch.
std::string wide_head_yaml(const std::string& data_dir, int64_t classes, int batch);

}  // namespace owt::test
