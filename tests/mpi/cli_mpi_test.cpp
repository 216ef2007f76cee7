// `mpirun -np K owt ...` end to end: multi-worker training writes one run directory and counts
// its bytes; a failing rank ends every rank with its message; checkpoints reshard across K
// (eval at K = 2 of a K = 1 run; resume at K = 2 and at K = 1 of a K = 2 run); training over
// TCP alone (how two hosts talk) ends where shared memory does; `parallel: auto` resolves alike
// on every rank and two workers still match one; `bench --comm` feeds `plan`.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "owt/core/error.h"
#include "owt/core/safetensors.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> mpirun(int np) {
  return {OWT_MPIEXEC, "--oversubscribe", "-np", std::to_string(np)};
}

CliResult run_mpi(int np, const std::vector<std::string>& args, int timeout_s = 120,
                  const std::vector<std::string>& mpi_flags = {}) {
  std::vector<std::string> full = mpirun(np);
  full.insert(full.end(), mpi_flags.begin(), mpi_flags.end());
  full.push_back(owt_binary());
  full.insert(full.end(), args.begin(), args.end());
  return run_process(full, timeout_s);
}

double json_field(const std::string& text, const std::string& key) {
  size_t at = text.find("\"" + key + "\": ");
  EXPECT_NE(at, std::string::npos) << key << " in " << text;
  return at == std::string::npos ? 0 : std::stod(text.substr(at + key.size() + 4));
}

// Largest relative difference (L2 per tensor) between the weights of two checkpoints.
double weight_difference(const std::string& a, const std::string& b) {
  StFile fa = read_safetensors(a), fb = read_safetensors(b);
  double worst = 0;
  for (const StTensor& t : fa.tensors) {
    if (t.name.rfind("optim.", 0) == 0) continue;
    std::vector<float> x = st_as_f32(t, a), y = st_as_f32(*fb.find(t.name), b);
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) num += std::pow(x[i] - y[i], 2), den += x[i] * x[i];
    worst = std::max(worst, std::sqrt(num / std::max(den, 1e-30)));
  }
  return worst;
}

class MpiCli : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    data_ = dir_.file("data");
    write_idx_dataset(data_, "train", 512, 12, 12, 4, 1, false);
    write_idx_dataset(data_, "t10k", 100, 12, 12, 4, 2, false);
    model_ = dir_.write("tiny.yaml", tiny_model_yaml(data_, 2, 16));
  }
  TempDir dir_;
  std::string data_, model_;
};

TEST_F(MpiCli, TwoWorkersTrainIntoOneRunDirectory) {
  std::string run = dir_.file("run");
  CliResult r = run_mpi(2, {"train", model_, "--out", run, "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t first = r.out.find("owt: trained");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("owt: trained", first + 1), std::string::npos) << "rank 0 alone reports:\n" << r.out;
  EXPECT_NE(r.out.find("on 2 workers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes per step per worker"), std::string::npos) << r.out;
  std::string metrics = read_text(run + "/metrics.jsonl");
  EXPECT_GT(json_field(metrics, "comm_bytes"), 0);
  EXPECT_NE(metrics.find("\"comm_bytes_by_op\""), std::string::npos);
  EXPECT_TRUE(fs::exists(run + "/checkpoints/last.safetensors"));
  size_t last_eval = metrics.rfind("\"kind\": \"eval\"");
  EXPECT_GT(json_field(metrics.substr(last_eval), "top1"), 0.9);
}

TEST_F(MpiCli, AFailingRankEndsEveryRankWithItsMessage) {
  std::string bad = dir_.file("no-such-data");
  std::vector<std::string> args = mpirun(1);
  for (const std::string& a : {owt_binary(), std::string("train"), model_, std::string("--out"),
                               dir_.file("run"), std::string(":"), std::string("-np"), std::string("1"),
                               owt_binary(), std::string("train"), model_, std::string("--data"), bad})
    args.push_back(a);
  auto t0 = std::chrono::steady_clock::now();
  CliResult r = run_process(args, 60);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128 + 9) << "killed by the time limit?";
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rank 1"), std::string::npos) << r.err;
  EXPECT_LT(seconds, 30) << "ranks did not end promptly";
}

TEST_F(MpiCli, CheckpointsReshardAcrossWorkerCounts) {
  // Eval at K = 2 of a K = 1 checkpoint gives the K = 1 numbers.
  std::string one = dir_.file("one");
  ASSERT_EQ(run_owt({"train", model_, "--out", one, "--max-steps", "6", "--no-progress"}).exit_code, 0);
  std::string ck = one + "/checkpoints/last.safetensors";
  CliResult e1 = run_owt({"eval", model_, "--checkpoint", ck, "--json"});
  CliResult e2 = run_mpi(2, {"eval", model_, "--checkpoint", ck, "--json", "--batch", "8"});
  ASSERT_EQ(e1.exit_code, 0) << e1.err;
  ASSERT_EQ(e2.exit_code, 0) << e2.err;
  EXPECT_EQ(json_field(e1.out, "top1"), json_field(e2.out, "top1"));
  EXPECT_NEAR(json_field(e1.out, "loss"), json_field(e2.out, "loss"), 1e-5);

  // A K = 2 run, straight vs interrupted and resumed at K = 2, and at K = 1 (batch 2b).
  std::string straight = dir_.file("straight"), resumed2 = dir_.file("r2"), resumed1 = dir_.file("r1");
  ASSERT_EQ(run_mpi(2, {"train", model_, "--out", straight, "--max-steps", "12", "--no-progress"}).exit_code, 0);
  ASSERT_EQ(run_mpi(2, {"train", model_, "--out", resumed2, "--max-steps", "5", "--no-progress"}).exit_code, 0);
  fs::copy(resumed2, resumed1, fs::copy_options::recursive);
  CliResult r2 = run_mpi(2, {"train", model_, "--resume", resumed2, "--max-steps", "12", "--no-progress"});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  CliResult r1 = run_owt({"train", model_, "--resume", resumed1, "--max-steps", "12", "--batch", "32",
                          "--no-progress"});
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_LE(weight_difference(straight + "/checkpoints/last.safetensors",
                              resumed2 + "/checkpoints/last.safetensors"), 1e-5);
  EXPECT_LE(weight_difference(straight + "/checkpoints/last.safetensors",
                              resumed1 + "/checkpoints/last.safetensors"), 1e-5);
}

TEST_F(MpiCli, TrainingOverTcpAloneEndsWhereSharedMemoryDoes) {
  // Open MPI's byte transfer layers: tcp and self only, no shared memory (vader).
  const std::string tcp = dir_.file("tcp"), shm = dir_.file("shm");
  CliResult r = run_mpi(2, {"train", model_, "--out", tcp, "--no-progress", "--max-steps", "12"}, 120,
                        {"--mca", "btl", "tcp,self"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_mpi(2, {"train", model_, "--out", shm, "--no-progress", "--max-steps", "12"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(weight_difference(tcp + "/checkpoints/last.safetensors", shm + "/checkpoints/last.safetensors"), 1e-6);
}

TEST_F(MpiCli, ParallelAutoIsResolvedAlikeOnEveryRankAndKeepsTheInvariant) {
  // The tiny model with its linear layers left to the plan, deciding from figures in the file.
  std::string text = tiny_model_yaml(data_, 2, 16);
  for (size_t at; (at = text.find("parallel: model}")) != std::string::npos;) text.replace(at, 16, "parallel: auto}");
  const std::string fixed_keys = "fc_update: step}";
  text.replace(text.find(fixed_keys), fixed_keys.size(), "fc_update: step, bandwidth_gbs: 10, tflops: 0.1}");
  const std::string model = dir_.write("auto.yaml", text);
  const std::string two = dir_.file("two"), one = dir_.file("one");
  CliResult r = run_mpi(2, {"train", model, "--out", two, "--no-progress", "--max-steps", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("owt: parallel: auto chose"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("runner-up"), std::string::npos) << r.out;
  r = run_owt({"train", model, "--out", one, "--no-progress", "--max-steps", "6", "--batch", "32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("parallel: auto chose"), std::string::npos) << "one worker: nothing to choose";
  EXPECT_LT(weight_difference(two + "/checkpoints/last.safetensors", one + "/checkpoints/last.safetensors"), 1e-5);
}

TEST_F(MpiCli, CommBenchmarkAndProfileFeedThePlan) {
  CliResult comm = run_mpi(2, {"bench", "--comm", "--json", "--max-mib", "1"});
  ASSERT_EQ(comm.exit_code, 0) << comm.err;
  for (const char* op : {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce"})
    EXPECT_NE(comm.out.find(cat("\"op\": \"", op, "\"")), std::string::npos) << comm.out;
  EXPECT_NE(comm.out.find("\"bytes\": 1048576"), std::string::npos) << "4 KiB .. 1 MiB: " << comm.out;
  const double overlap = json_field(comm.out, "overlap");
  EXPECT_GE(overlap, 0);
  EXPECT_LE(overlap, 1);
  CliResult profile = run_owt({"bench", model_, "--profile", "--json", "--iters", "3", "--warmup", "1", "--threads", "1"});
  ASSERT_EQ(profile.exit_code, 0) << profile.err;
  const std::string comm_file = dir_.write("comm.json", comm.out), profile_file = dir_.write("p.json", profile.out);
  CliResult plan = run_owt({"plan", model_, "--workers", "2", "--profile", profile_file, "--comm", comm_file, "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const std::string hybrid = plan.out.substr(plan.out.find("\"prediction\""));
  EXPECT_GT(json_field(hybrid, "step_seconds"), 0);
  EXPECT_GT(json_field(hybrid, "comm_seconds"), 0);
  EXPECT_GT(json_field(plan.out, "speedup_dp"), 0);
  // A profile measured on two workers is refused: the model scales one worker's times.
  CliResult two = run_mpi(2, {"bench", model_, "--profile", "--json", "--iters", "2", "--warmup", "1"});
  ASSERT_EQ(two.exit_code, 0) << two.err;
  plan = run_owt({"plan", model_, "--workers", "2", "--profile", dir_.write("two.json", two.out), "--comm", comm_file});
  EXPECT_NE(plan.exit_code, 0);
  EXPECT_NE(plan.err.find("workers"), std::string::npos) << plan.err;
}

}  // namespace
}  // namespace owt::test
