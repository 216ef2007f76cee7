// Shared by the tools tests: the project's venv python (tools/venv.sh) and Debian's, the
// source tree, and running a Python script of tests/tools or tools/ with a time limit.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/cli_runner.h"

namespace owt::test {

inline std::string source_path(const std::string& rel) { return std::string(OWT_SOURCE_DIR) + "/" + rel; }

// .venv/bin/python; a missing venv fails the test with the command that makes it.
inline std::string venv_python() {
  const std::string py = OWT_VENV_PYTHON;
  EXPECT_TRUE(std::filesystem::exists(py)) << py << " is missing: run tools/venv.sh (tools/install_deps.sh does)";
  return py;
}

inline CliResult run_python(const std::string& python, const std::string& script,
                            const std::vector<std::string>& args, int timeout_s = 300) {
  std::vector<std::string> argv = {python, script};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, timeout_s);
}

}  // namespace owt::test
