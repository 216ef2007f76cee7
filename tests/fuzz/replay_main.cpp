// owt_fuzz_replay TARGET PATH...: runs every file under PATH (directories are walked, missing
// ones skipped) through the fuzz target TARGET (fuzz_targets.h) in a normal build, so that the
// seed corpus and every crash input the fuzzers ever found run in each ctest (the
// owt_fuzz_replay_<target> tests, label unit), not only in the OWT_FUZZ build. A crash, an
// uncaught exception or a sanitizer report fails the test; the last "input:" line names the file.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 3) {
    std::fprintf(stderr, "usage: owt_fuzz_replay TARGET PATH...\n");
    return 2;
  }
  const owt::fuzz::Target* target = owt::fuzz::find_target(argv[1]);
  if (!target) {
    std::fprintf(stderr, "owt_fuzz_replay: no target %s\n", argv[1]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_regular_file(argv[i], ec)) files.push_back(argv[i]);
    else if (fs::is_directory(argv[i], ec))
      for (const auto& e : fs::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::fprintf(stderr, "input: %s\n", f.c_str());
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    target->run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("owt_fuzz_replay %s: %zu inputs, no crash\n", target->name, files.size());
  return 0;
}
