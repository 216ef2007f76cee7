// Options shared by several subcommands: the OpenMP thread count and the --device backend
// (a process's GPU is its node-local rank modulo the visible devices).
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "commands.h"
#include "owt/comm/make_communicator.h"
#include "owt/parallel/auto_parallel.h"
#include "owt/train/metrics.h"
#include "owt/backend/backend.h"
#include "owt/backend/cuda.h"
#include "owt/core/error.h"

namespace owt {

void add_batch_option(CLI::App* cmd, int64_t& batch) {
  cmd->add_option("--batch", batch, "Batch per worker (0: solver.batch)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
}

void add_compute_options(CLI::App* cmd, int& threads, std::string& device) {
  cmd->add_option("--threads", threads, "Threads per worker (0: cores / workers)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", device, "Where to compute")
      ->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
}

ComputeSetup setup_compute(Communicator& world, const std::string& model, const std::string& device,
                           int threads, bool announce, const std::string& precision) {
  set_thread_count(threads);
  ComputeSetup s;
  s.cfg = load_model_config(model);
  if (!precision.empty()) s.cfg.precision = precision;
  try {
    s.backend = make_backend_for(device, s.cfg.precision, announce && world.rank() == 0);
  } catch (const Error& e) {  // e.g. bf16 on a CPU without AVX512_BF16: name the file
    throw Error(cat(model, ": ", e.what()));
  }
  s.device_comm = make_device_communicator(world, *s.backend);  // NCCL for GPU workers
  s.comm = s.device_comm ? s.device_comm.get() : &world;
  return s;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void resolve_parallel(ModelConfig& cfg, int workers, int64_t batch, bool announce) {
  AutoChoice c = resolve_auto_parallel(cfg.net, workers, batch > 0 ? batch : cfg.solver.batch);
  if (!c.any_auto) return;
  cfg.net = std::move(c.spec);
  if (!announce) return;
  std::string runner_up;
  if (c.candidates.size() > 1)
    runner_up = cat("; runner-up ", c.candidates[1].describe(), ", ", fixed(1e3 * c.candidates[1].step_seconds, 2), " ms");
  std::printf("owt: parallel: auto chose %s (predicted %s ms per step from %s%s)\n",
              c.candidates.front().describe().c_str(), fixed(1e3 * c.candidates.front().step_seconds, 2).c_str(),
              c.inputs.c_str(), runner_up.c_str());
}

void set_thread_count(int threads) {
  if (threads <= 0) {
    // Share the cores of this node between the workers mpirun started on it.
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int ranks = local ? std::max(1, std::atoi(local)) : 1;
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks);
  }
  omp_set_num_threads(threads);
}

namespace {
// This process's rank among the workers on its node, as the MPI launcher or Slurm says; 0
// when started without one.
int local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK",
                          "SLURM_LOCALID"})
    if (const char* v = std::getenv(var)) return std::max(0, std::atoi(v));
  return 0;
}
}  // namespace

std::unique_ptr<Backend> make_backend_for(const std::string& device, const std::string& precision,
                                          bool announce) {
  if (device == "cpu") return make_cpu_backend(precision);
  const int count = cuda_device_count();
  if (device == "cuda") {
    if (!cuda_backend_built()) return make_cuda_backend(0, precision);  // throws: not built
    if (count == 0) throw Error("--device cuda: no CUDA device is visible");
    return make_cuda_backend(local_rank() % count, precision);
  }
  if (count > 0) return make_cuda_backend(local_rank() % count, precision);
  // On stdout with the run's other notes: stderr carries exactly one line per error.
  if (announce && cuda_backend_built()) std::printf("owt: no GPU visible; running on the CPU\n");
  return make_cpu_backend(precision);
}

}  // namespace owt
