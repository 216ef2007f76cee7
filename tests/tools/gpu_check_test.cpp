// tools/gpu_check.sh without a GPU: it stops at once, saying how to make the bundle, when the
// bundle is missing; and its dry run over a stand-in bundle (shell scripts in place of owt and
// owt_gpu_tests) passes setup, lists every phase with its budget within the 540 s limit, and
// writes summary.json and summary.txt under $OUT.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "support/temp_dir.h"
#include "tools_support.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

CliResult gpu_check(const std::vector<std::string>& env, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(source_path("tools/gpu_check.sh"));
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, 120);
}

TEST(GpuCheck, StopsAtOnceWithoutTheBundleAndSaysHowToMakeIt) {
  TempDir dir;
  // It stops before anything else: no unpacking, no log directory.
  CliResult r =
      gpu_check({"OWT_GPU_BUNDLE=" + dir.file("none.tar.gz"), "OUT=" + dir.file("out")}, {});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.err, "no bundle at " + dir.file("none.tar.gz"))) << r.err;
  EXPECT_TRUE(has(r.err, "tools/gpu_check.sh --bundle")) << r.err;
  EXPECT_TRUE(has(r.err, "build-bundle/owt-gpu-bundle.tar.gz")) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("out"))) << "nothing is written without a bundle";
}

TEST(GpuCheck, DryRunOverAStandInBundleWritesTheSummary) {
  TempDir dir;
  // The bundle's layout (see make_bundle): owt-gpu-bundle/{bin,lib}, COMMIT.
  const fs::path stage = fs::path(dir.path()) / "owt-gpu-bundle";
  fs::create_directories(stage / "bin");
  fs::create_directories(stage / "lib");
  auto script = [&](const std::string& name, const std::string& body) {
    const fs::path p = stage / "bin" / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(p, fs::perms::owner_all);
  };
  script("owt", "exit 0");
  script("owt_gpu_tests", "printf 'GpuExact.\\n  Fill\\n  Gemm\\n'");
  std::ofstream(stage / "bin" / "libowt_cuda.so") << "";
  std::ofstream(stage / "COMMIT") << "stand-in\n";
  const std::string tar = dir.file("bundle.tar.gz");
  ASSERT_EQ(run_process({"tar", "-C", dir.path(), "-czf", tar, "owt-gpu-bundle"}).exit_code, 0);

  const std::string out = dir.file("out");
  CliResult r = gpu_check({"OWT_GPU_BUNDLE=" + tar, "OUT=" + out, "OWT_GPU_CHECK_DRY=1"}, {});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* phase : {"setup", "gpu-tests", "memcheck", "owt-tf32", "torch-tf32",
                            "owt-bf16", "torch-bf16", "step-model", "summary"})
    EXPECT_TRUE(has(r.out, phase)) << phase << " in " << r.out;
  EXPECT_TRUE(has(read_text(out + "/setup.log"), "lists 2 tests")) << read_text(out + "/setup.log");

  const nlohmann::json s = nlohmann::json::parse(read_text(out + "/summary.json"));
  EXPECT_TRUE(s["dry_run"].get<bool>());
  EXPECT_EQ(s["commit"], "stand-in");
  EXPECT_LE(s["worst_case_s"].get<int>(), s["limit_s"].get<int>());
  EXPECT_EQ(s["limit_s"], 540);
  int budgets = 0;
  bool step_model = false;
  for (const auto& p : s["phases"]) {
    budgets += p["budget_s"].get<int>();
    if (p["name"] == "step-model") step_model = true;
    if (p["name"] == "setup") {
      EXPECT_EQ(p["status"], "passed");
    }
  }
  EXPECT_EQ(budgets, s["worst_case_s"].get<int>());
  EXPECT_TRUE(step_model);
  EXPECT_EQ(s["step_model"]["assumed_link_gbs"], 450.0);
  // The table comes last on stdout and is the same as summary.txt.
  const std::string table = read_text(out + "/summary.txt");
  EXPECT_TRUE(has(table, "dry run: nothing ran on a GPU")) << table;
  ASSERT_GE(r.out.size(), table.size());
  EXPECT_EQ(r.out.substr(r.out.size() - table.size()), table);
}

}  // namespace
}  // namespace owt::test
