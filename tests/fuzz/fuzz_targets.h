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

// model_yaml, idx, cifar, safetensors, packed_index, image_decode.
const std::vector<Target>& targets();
// The target called `name`, or nullptr.
const Target* find_target(const std::string& name);

}  // namespace owt::fuzz
