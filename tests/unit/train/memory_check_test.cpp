// memory_check (train/memory_check.h): MemAvailable and cgroup v2/v1 limits read from fake
// /proc and /sys trees, the override knob, and the check itself on one worker: it refuses with
// both numbers when the estimate exceeds the memory, passes when it fits or is skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/train/memory_check.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

constexpr int64_t MiB = int64_t{1} << 20;

TEST(MemoryCheck, MemAvailableIsReadInKilobytes) {
  EXPECT_EQ(meminfo_available("MemTotal:       24683656 kB\nMemFree:  1 kB\n"
                              "MemAvailable:   22332388 kB\nBuffers: 5 kB\n"),
            int64_t{22332388} * 1024);
  EXPECT_EQ(meminfo_available("MemTotal: 1 kB\n"), -1);
}

TEST(MemoryCheck, CgroupV2TightestLimitOnTheWayUp) {
  TempDir dir;
  const std::string root = dir.path() + "/sys/fs/cgroup";
  // The job: 1 GiB, 512 MiB used of which 100 MiB inactive page cache: 612 MiB free.
  write(root + "/user.slice/job/memory.max", "1073741824\n");
  write(root + "/user.slice/job/memory.current", "536870912\n");
  write(root + "/user.slice/job/memory.stat", "anon 1\ninactive_file 104857600\nactive_file 7\n");
  write(root + "/user.slice/memory.max", "max\n");  // unlimited parent
  const std::string cgroup = "0::/user.slice/job\n";
  const std::string mounts = "31 23 0:28 / /sys/fs/cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
  std::optional<CgroupMemory> m = cgroup_memory(cgroup, mounts, dir.path());
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->version, 2);
  EXPECT_EQ(m->limit, 1024 * MiB);
  EXPECT_EQ(m->free(), 612 * MiB);
  // A parent that leaves less wins: 700 MiB, 650 MiB used, nothing reclaimable.
  write(root + "/user.slice/memory.max", "734003200\n");
  write(root + "/user.slice/memory.current", "681574400\n");
  m = cgroup_memory(cgroup, mounts, dir.path());
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->limit, 700 * MiB);
  EXPECT_EQ(m->free(), 50 * MiB);
  // Nothing limited: no cgroup memory.
  write(root + "/user.slice/memory.max", "max\n");
  write(root + "/user.slice/job/memory.max", "max\n");
  EXPECT_FALSE(cgroup_memory(cgroup, mounts, dir.path()).has_value());
}

TEST(MemoryCheck, CgroupV1MemoryController) {
  TempDir dir;
  const std::string job = dir.path() + "/sys/fs/cgroup/memory/process_api/abc";
  write(job + "/memory.limit_in_bytes", "2147483648\n");
  write(job + "/memory.usage_in_bytes", "1073741824\n");
  write(job + "/memory.stat", "cache 9\ninactive_file 5\ntotal_inactive_file 209715200\n");
  write(dir.path() + "/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  const std::string cgroup = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n";
  const std::string mounts =
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  const std::optional<CgroupMemory> m = cgroup_memory(cgroup, mounts, dir.path());
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->version, 1);
  EXPECT_EQ(m->limit, 2048 * MiB);
  EXPECT_EQ(m->free(), 1224 * MiB);
}

TEST(MemoryCheck, OverrideKnob) {
  setenv("OWT_MEMORY_LIMIT_BYTES", "12345", 1);
  HostMemory h = read_host_memory();
  EXPECT_EQ(h.free, 12345);
  EXPECT_EQ(h.source, MemorySource::Override);
  setenv("OWT_MEMORY_LIMIT_BYTES", "12k", 1);
  expect_error([] { read_host_memory(); }, {"OWT_MEMORY_LIMIT_BYTES=12k", "bytes"});
  unsetenv("OWT_MEMORY_LIMIT_BYTES");
  h = read_host_memory();
  EXPECT_NE(h.source, MemorySource::Override);
  EXPECT_GT(h.free, 0);
}

TEST(MemoryCheck, ResidentSetIsMeasured) {
  EXPECT_GT(resident_bytes(), MiB);
  EXPECT_GE(peak_resident_bytes(), resident_bytes() / 2);
}

ModelConfig small_model() {
  return parse_model_config(
      "name: m\ninput: [1, 12, 12]\nclasses: 10\ndata: {path: /nonexistent}\nlayers:\n"
      "  - {name: c1, type: conv, filters: 8, size: 3, pad: 1}\n"
      "  - {name: fc1, type: linear, outputs: 4000}\n"
      "  - {name: fc2, type: linear, outputs: 10}\n"
      "  - {name: loss, type: softmax_cross_entropy}\n"
      "solver: {lr: 0.1, batch: 16, epochs: 1}\n",
      "m.yaml");
}

TEST(MemoryCheck, RefusesWithBothNumbersAndPassesWhenItFits) {
  const ModelConfig cfg = small_model();
  std::unique_ptr<Backend> backend = make_cpu_backend();
  std::unique_ptr<Communicator> comm = make_local_communicator();
  TrainOptions opt;
  setenv("OWT_MEMORY_LIMIT_BYTES", "1000", 1);
  const std::string msg = error_of([&] { check_memory(cfg, opt, *backend, *comm, 100, 10); });
  EXPECT_NE(msg.find("m.yaml: the hybrid plan needs about "), std::string::npos) << msg;
  EXPECT_NE(msg.find("this host has "), std::string::npos) << msg;
  EXPECT_NE(msg.find("OWT_MEMORY_LIMIT_BYTES 1000 B"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--skip-memory-check"), std::string::npos) << msg;
  // c1 80, fc1 1152 x 4000 + 4000, fc2 4000 x 10 + 10: 17.7 MiB, as many of gradients and momentum.
  EXPECT_NE(msg.find("parameters 17.7 MiB, gradients 17.7 MiB, momentum 17.7 MiB"), std::string::npos)
      << msg;

  opt.mode = ParallelMode::DataOnly;
  const std::string dp = error_of([&] { check_memory(cfg, opt, *backend, *comm, 100, 10); });
  EXPECT_NE(dp.find("--parallel dp needs about "), std::string::npos) << dp;
  EXPECT_NE(dp.find("or the hybrid plan (about "), std::string::npos) << dp;

  opt.skip_memory_check = true;
  const MemoryEstimate est = check_memory(cfg, opt, *backend, *comm, 100, 10);
  // Each param in whole 64-float slots: 72 -> 128, 8 -> 64, 4000 -> 4032, 10 -> 64.
  EXPECT_EQ(est.parameters, (128 + 64 + 1152 * 4000 + 4032 + 40000 + 64) * 4);

  opt.skip_memory_check = false;
  setenv("OWT_MEMORY_LIMIT_BYTES", "100000000000", 1);  // 100 GB
  EXPECT_GT(check_memory(cfg, opt, *backend, *comm, 100, 10).peak(), est.parameters * 3);
  unsetenv("OWT_MEMORY_LIMIT_BYTES");
}

}  // namespace
}  // namespace owt::test
