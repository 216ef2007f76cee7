// Runs the owt binary (or mpirun around it) as a child process for end-to-end tests, capturing
// its exit code, stdout and stderr; and a small model file for the generated test data sets.
#pragma once
#include <string>
#include <vector>

namespace owt::test {

struct CliResult {
  int exit_code = -1;  // the process's exit status, or 128 + signal when killed by one
  std::string out, err;
};

// Runs `args` (argv[0] is the program) with a time limit in seconds; never through a shell.
CliResult run_process(const std::vector<std::string>& args, int timeout_s = 300);
// Runs the owt binary built with the tests.
CliResult run_owt(const std::vector<std::string>& args, int timeout_s = 300);
std::string owt_binary();

// A model file for 1x12x12 images of 4 classes (write_idx_dataset with h = w = 12, classes 4):
// conv, relu, maxpool, linear(model), relu, dropout, linear(model), loss.
std::string tiny_model_yaml(const std::string& data_dir, int epochs = 3, int batch = 16,
                            const std::string& transition = "pipelined");

std::string read_text(const std::string& path);

}  // namespace owt::test
