// Checkpoints under mpirun -np K: the file equals one worker's byte for byte (uneven, empty and
// strided shards, any chunk size), only each worker's own rows travel (send/recv to rank 0),
// loads reshard onto K, 2 and 1; send/recv itself; the measurement of docs/ARCHITECTURE.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "owt/comm/make_communicator.h"
#include "owt/core/safetensors.h"
#include "owt/nn/init.h"
#include "owt/train/checkpoint.h"
#include "support/checkpoint_fixture.h"
#include "support/temp_dir.h"
#include "support/world_comm.h"

namespace owt {
namespace {

using test::CheckpointModel;
using test::checkpoint_config;
using test::world;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Rank 0's string on every rank (characters travel as floats).
std::string broadcast_string(std::string s, Communicator& comm) {
  float n = static_cast<float>(s.size());
  comm.broadcast(&n, 1, 0);
  std::vector<float> chars(static_cast<size_t>(n));
  for (size_t i = 0; i < s.size() && comm.rank() == 0; ++i) chars[i] = static_cast<unsigned char>(s[i]);
  comm.broadcast(chars.data(), chars.size(), 0);
  s.resize(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) s[i] = static_cast<char>(static_cast<int>(chars[i]));
  return s;
}


TEST(CommMpi, PointToPointDeliversInOrderAndCountsTheSender) {
  Communicator& comm = world();
  const int K = comm.size(), r = comm.rank();
  EXPECT_THROW(comm.send_async(nullptr, 0, r), Error);  // no message to itself
  EXPECT_THROW(comm.recv_async(nullptr, 0, K), Error);
  if (K == 1) return;
  comm.reset_counters();
  // A ring, three messages each way, the later ones posted before the earlier ones complete.
  const int next = (r + 1) % K, prev = (r + K - 1) % K;
  std::vector<std::vector<float>> out(3), in(3);
  std::vector<std::unique_ptr<CommHandle>> handles;
  for (int m = 0; m < 3; ++m) {
    in[m].assign(prev + m + 1, -1.f);
    handles.push_back(comm.recv_async(in[m].data(), in[m].size(), prev));
  }
  for (int m = 0; m < 3; ++m) {
    out[m].assign(r + m + 1, static_cast<float>(100 * r + m));
    handles.push_back(comm.send_async(out[m].data(), out[m].size(), next));
  }
  for (auto& h : handles) h->wait();
  for (int m = 0; m < 3; ++m)
    EXPECT_EQ(in[m], std::vector<float>(prev + m + 1, static_cast<float>(100 * prev + m)));
  EXPECT_EQ(comm.elements_sent(CommOp::Send), static_cast<uint64_t>(3 * r + 6));
  EXPECT_EQ(comm.total_elements_sent(), static_cast<uint64_t>(3 * r + 6));
  comm.barrier();
}

TEST(CheckpointMpi, FileEqualsTheOneWorkerFileAndOnlyOwnRowsTravel) {
  Communicator& comm = world();
  const int K = comm.size(), rank = comm.rank();
  auto be = make_cpu_backend();
  std::unique_ptr<test::TempDir> owned;
  if (rank == 0) owned = std::make_unique<test::TempDir>();
  const std::string dir = broadcast_string(owned ? owned->path() : "", comm);
  const ModelConfig cfg = checkpoint_config();
  CheckpointModel model(rank, K, *be);

  // The one-worker file, written in-process on rank 0 with the local communicator.
  const std::string one = dir + "/one.safetensors";
  if (rank == 0) {
    auto local = make_local_communicator();
    CheckpointModel single(0, 1, *be);
    save_checkpoint(one, single.store(), CheckpointMeta{cfg, 7, 2, false, {"x"}}, *be, *local);
  }
  for (size_t chunk : {size_t{4}, size_t{12}, size_t{44}, kCheckpointChunkBytes}) {
    SCOPED_TRACE(cat("K = ", K, ", chunk ", chunk));
    CheckpointMeta meta{cfg, 7, 2, false, {"x"}};
    meta.chunk_bytes = chunk;
    const std::string path = cat(dir, "/k", K, "-", chunk, ".safetensors");
    comm.reset_counters();
    save_checkpoint(path, model.store(), meta, *be, comm);
    // Each worker sent exactly its own rows of the sharded params (value and momentum), to
    // rank 0, point to point; rank 0 sent nothing, nobody gathered or broadcast anything.
    uint64_t own = 0;
    for (const Param* p : model.store().params())
      if (p->sharded() && rank != 0) own += 2 * p->value.numel();
    EXPECT_EQ(comm.elements_sent(CommOp::Send), own);
    EXPECT_EQ(comm.total_elements_sent(), own);
    comm.barrier();  // rank 0 has committed the file
    if (rank == 0) {
      EXPECT_TRUE(slurp(path) == slurp(one)) << path << " differs from " << one;
    }

    // Every worker reads its own rows back; then as rank r of 2 and of 1 (K = 3 -> 2, ...).
    CheckpointModel mine(rank, K, *be);
    mine.clear(*be);
    load_checkpoint(path, mine.store(), *be, true, chunk);
    mine.expect_keyed(*be, true);
    for (int workers : {1, 2})
      if (rank < workers) {
        CheckpointModel other(rank, workers, *be);
        other.clear(*be);
        load_checkpoint(path, other.store(), *be, true, chunk);
        other.expect_keyed(*be, true);
      }
  }
  comm.barrier();  // everyone is done with the files before rank 0 removes them
}

// ---- measurement (docs/ARCHITECTURE.md, "Checkpoints") ----------------------------------------

// This process's resident set now and at its peak, in MiB (/proc/self/status).
std::pair<double, double> rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double now = 0, peak = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) now = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) peak = std::atof(line.c_str() + 6) / 1024;
  }
  return {now, peak};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A (rows, cols) head (default 1000000 x 512; OWT_BENCH_ROWS, OWT_BENCH_COLS, OWT_BENCH_AXIS)
// sharded over the K workers, its bias and a small replicated conv: init, save to
// OWT_BENCH_DIR (default /tmp), load; each rank prints seconds and RSS.
TEST(CheckpointMpi, DISABLED_SaveAndLoadAMillionClassHead) {
  Communicator& comm = world();
  const int K = comm.size(), rank = comm.rank();
  auto env = [](const char* name, int64_t fallback) {
    const char* v = std::getenv(name);
    return v ? std::atoll(v) : fallback;
  };
  const int64_t rows = env("OWT_BENCH_ROWS", 1000000), cols = env("OWT_BENCH_COLS", 512);
  const int axis = static_cast<int>(env("OWT_BENCH_AXIS", 0));
  const char* dir_env = std::getenv("OWT_BENCH_DIR");
  const std::string path = cat(dir_env ? dir_env : "/tmp", "/owt-bench-head.safetensors");
  auto be = make_cpu_backend();
  std::vector<Param> params;
  params.push_back(make_replicated_param("conv1.weight", Shape{64, 3, 11, 11}, weight_init("default", 363)));
  params.push_back(make_sharded_param("head.weight", Shape{rows, cols}, axis, rank, K, weight_init("default", cols)));
  params.push_back(make_sharded_param("head.bias", Shape{rows}, 0, rank, K, bias_init("default", cols)));
  std::vector<Param*> ptrs;
  for (Param& p : params) ptrs.push_back(&p);
  ParamStore store(ptrs, *be);
  auto t0 = std::chrono::steady_clock::now();
  for (Param* p : ptrs) initialize_param(*p, 1, *be);
  const double init_s = seconds_since(t0);
  for (Param* p : ptrs)  // momentum = value, so a load can be checked against it
    be->copy(p->value.f32(), p->state.f32(), p->value.numel() * sizeof(float));
  const auto before = rss_mib();

  const ModelConfig cfg = checkpoint_config();
  comm.barrier();
  t0 = std::chrono::steady_clock::now();
  save_checkpoint(path, store, CheckpointMeta{cfg, 1, 1, false, {}}, *be, comm);
  const double mine_s = seconds_since(t0);
  comm.barrier();
  const double save_s = seconds_since(t0);
  const auto after_save = rss_mib();

  // Load into fresh params (same store: values zeroed a chunk at a time), timed.
  const std::vector<float> zero(kCheckpointChunkBytes / sizeof(float), 0.f);
  for (Param* p : ptrs)
    for (int64_t at = 0; at < p->value.numel(); at += static_cast<int64_t>(zero.size()))
      be->from_host(zero.data(), p->value.f32() + at,
                    std::min<int64_t>(zero.size(), p->value.numel() - at) * sizeof(float));
  comm.barrier();
  t0 = std::chrono::steady_clock::now();
  load_checkpoint(path, store, *be, true);
  comm.barrier();
  const double load_s = seconds_since(t0);
  const auto after_load = rss_mib();
  for (Param* p : ptrs) {
    std::vector<float> v(p->value.numel()), s(p->value.numel());
    be->to_host(p->value.f32(), v.data(), v.size() * sizeof(float));
    be->to_host(p->state.f32(), s.data(), s.size() * sizeof(float));
    EXPECT_TRUE(v == s) << p->name;
  }
  std::printf("rank %d/%d: (%lld, %lld) Shard(%d): init %.2f s; save %.2f s (own part %.2f s), "
              "load %.2f s; RSS MiB: before save %.0f, peak after save %.0f, peak after load %.0f "
              "(now %.0f)\n",
              rank, K, static_cast<long long>(rows), static_cast<long long>(cols), axis, init_s,
              save_s, mine_s, load_s, before.first, after_save.second, after_load.second,
              after_load.first);
  std::fflush(stdout);
  comm.barrier();
  if (rank == 0) std::remove(path.c_str());
}

}  // namespace
}  // namespace owt
