// The libFuzzer entry point of one fuzz target: OWT_FUZZ_TARGET (set by tests/fuzz/CMakeLists.txt
// for each owt_fuzz_<target> binary) names the function of fuzz_targets.cpp it runs.
#include <cstdio>
#include <cstdlib>

#include "fuzz_targets.h"

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
