// The subcommands of the owt command line, each registered on the CLI11 app by its own file
// and run after parsing with the job's communicator.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

#include "owt/comm/communicator.h"
#include "owt/train/model_config.h"

namespace owt {

// What main runs once the command line is parsed; returns the process exit code.
using CommandRunner = std::function<int(Communicator& comm)>;

// Each adds its subcommand to `app` and sets `run` when that subcommand is chosen.
void add_train_command(CLI::App& app, CommandRunner& run);
void add_eval_command(CLI::App& app, CommandRunner& run);
void add_bench_command(CLI::App& app, CommandRunner& run);
void add_plan_command(CLI::App& app, CommandRunner& run);
void add_data_command(CLI::App& app, CommandRunner& run);
void add_predict_command(CLI::App& app, CommandRunner& run);

// The options every computing subcommand shares: --batch (per worker, 0: solver.batch),
// --threads (per worker, 0: cores / workers on this node) and --device.
void add_batch_option(CLI::App* cmd, int64_t& batch);
void add_compute_options(CLI::App* cmd, int& threads, std::string& device);

// What a computing subcommand needs once its flags are parsed: the model file, the backend
// for --device at the model's precision, and the communicator its tensors travel on (NCCL
// for several GPU workers, else the job's world communicator).
struct ComputeSetup {
  ModelConfig cfg;
  std::unique_ptr<class Backend> backend;
  std::unique_ptr<Communicator> device_comm;
  Communicator* comm = nullptr;
};
// Sets the thread count, loads `model`, makes the backend (announcing a CPU fallback on
// rank 0 when `announce`) at `precision` (empty: the model file's) and the device communicator.
ComputeSetup setup_compute(Communicator& world, const std::string& model, const std::string& device,
                           int threads, bool announce, const std::string& precision = "");

// Resolves the model's `parallel: auto` layers for `workers` workers at `batch` rows each (0:
// solver.batch) from the model file's own inputs (auto_parallel.h); rank 0 prints the choice
// when `announce`. Nothing changes without auto layers or on one worker.
void resolve_parallel(ModelConfig& cfg, int workers, int64_t batch, bool announce);

// `s` as a JSON string, quotes included: `"` and `\` escaped, control characters as \uXXXX.
std::string json_string(const std::string& s);

// Shared options: OpenMP threads per worker (0: cores / workers on this node).
void set_thread_count(int threads);
// The backend named by --device ("auto": CUDA when a GPU is visible, else the CPU, with a
// one-line note when `announce`), computing at `precision` (the model file's key; on the CPU,
// tf32 and fp32-strict are fp32 and bf16 needs AVX512_BF16).
std::unique_ptr<class Backend> make_backend_for(const std::string& device,
                                                const std::string& precision, bool announce);

}  // namespace owt
