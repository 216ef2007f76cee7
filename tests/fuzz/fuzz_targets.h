// owt's fuzz targets: each feeds bytes to one parser entry point exactly as a file on disk would
// reach it (model YAML, IDX, CIFAR, safetensors, packed index, image decoding). A target
// returns normally for any input owt accepts or refuses with owt::Error (or BadExample); any
// other exception, crash or sanitizer report is a bug. The same functions run under libFuzzer
// (fuzz_main.cpp, the OWT_FUZZ build, tools/fuzz.sh) and in every normal build over the checked-in
// corpus and regression inputs (replay_main.cpp, ctest owt_fuzz_replay_<target>).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace owt::fuzz {

using TargetFn = void (*)(const uint8_t* data, size_t size);

struct Target {
  const char* name;
  TargetFn run;
};

// While alive, no single allocation on this thread should take more than `bytes`: the
// libFuzzer driver (fuzz_main.cpp) aborts on a larger one; the replay build ignores it.
// A target sets it from the size its input declares, so that a parser which lets a library
// allocate more than the declared size is a finding at any size, not only past the 2 GiB
// that libFuzzer calls out of memory.
class AllocationBudget {
 public:
  explicit AllocationBudget(size_t bytes) : outer_(bytes_) { bytes_ = bytes; }
  ~AllocationBudget() { bytes_ = outer_; }
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;
  // The budget of the innermost live AllocationBudget on this thread; 0 means none.
  static size_t bytes() { return bytes_; }

 private:
  size_t outer_;
  static thread_local size_t bytes_;
};

// model_yaml, idx, cifar, safetensors, packed_index, image_decode.
const std::vector<Target>& targets();
// The target called `name`, or nullptr.
const Target* find_target(const std::string& name);

}  // namespace owt::fuzz
