// The run's TensorBoard event files, read back by TensorBoard's EventAccumulator
// (check_events.py in the project's venv): every scalar tag, steps increasing, values equal to
// metrics.jsonl; a run resumed after a kill writes a new file whose steps continue, and
// neither a file cut short mid-record nor a corrupt one in the directory breaks it.
#include <filesystem>
#include <fstream>

#include "support/idx_writer.h"
#include "support/temp_dir.h"
#include "tools_support.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TensorBoard, EventFilesReadBackAndResumedRunsContinue) {
  const std::string python = venv_python();
  TempDir dir;
  const std::string data = dir.file("data");
  write_idx_dataset(data, "train", 256, 12, 12, 4, 1, false);
  write_idx_dataset(data, "t10k", 64, 12, 12, 4, 2, false);
  const std::string model = dir.write("tiny.yaml", tiny_model_yaml(data, 3, 32));
  const std::string run = dir.file("run");

  CliResult first = run_owt({"train", model, "--out", run, "--epochs", "2", "--no-progress"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(event_files(run).size(), 1u);
  CliResult check = run_python(python, source_path("tests/tools/check_events.py"), {run});
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;

  // A run killed while writing: half a record at the end of its file. And a corrupt file.
  std::ofstream(event_files(run)[0], std::ios::binary | std::ios::app) << std::string("\x2a\0\0\0\0\0\0\0\x01\x02", 10);
  const std::string corrupt = run + "/events.out.tfevents.1000000000.corrupt";
  std::ofstream(corrupt, std::ios::binary) << "this is not a TFRecord file at all, nor a protobuf";

  CliResult resumed = run_owt({"train", model, "--resume", run, "--no-progress"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ASSERT_EQ(event_files(run).size(), 3u);
  check = run_python(python, source_path("tests/tools/check_events.py"),
                     {run, "--min-files", "2", "--damaged", corrupt});
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
  // 256 / 32 = 8 steps per epoch: epochs 1, 2 from the first run, 3 from the resumed one.
  EXPECT_NE(check.out.find("steps [8, 16, 24]"), std::string::npos) << check.out;
}

}  // namespace
}  // namespace owt::test
