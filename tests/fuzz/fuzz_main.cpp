// The libFuzzer entry point of one fuzz target: OWT_FUZZ_TARGET (set by tests/fuzz/CMakeLists.txt
// for each owt_fuzz_<target> binary) names the function of fuzz_targets.cpp it runs; a malloc
// hook holds each input to the allocation budget its target sets (AllocationBudget).
#include <sanitizer/allocator_interface.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "fuzz_targets.h"

namespace {

// A sanitizer malloc hook: an allocation over the target's AllocationBudget is a finding.
// write(2) rather than stderr: owt's image codec routes stderr into its messages mid-decode.
void check_budget(const volatile void*, size_t size) {
  const size_t budget = owt::fuzz::AllocationBudget::bytes();
  if (budget == 0 || size <= budget) return;
  char line[160];
  const int n = std::snprintf(line, sizeof line,
                              "owt fuzz: one allocation of %zu bytes, over the input's budget of "
                              "%zu (fuzz_targets.h, AllocationBudget)\n", size, budget);
  if (n > 0) (void)!::write(STDERR_FILENO, line, static_cast<size_t>(n));
  std::abort();
}

void ignore_free(const volatile void*) {}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  __sanitizer_install_malloc_and_free_hooks(check_budget, ignore_free);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const owt::fuzz::Target* target = [] {
    const owt::fuzz::Target* t = owt::fuzz::find_target(OWT_FUZZ_TARGET);
    if (!t) {
      std::fprintf(stderr, "owt fuzz: no target %s\n", OWT_FUZZ_TARGET);
      std::abort();
    }
    return t;
  }();
  target->run(data, size);
  return 0;
}
