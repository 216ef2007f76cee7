// Issue 16 through the CLI: `owt predict` names the classes of data.class_names (kept in the
// checkpoint), `owt plan` runs on a file that describes only the network, `owt data check`
// takes a folder of class folders and shows no codec library lines, stdout and stderr come out
// in order through a pipe, and forged sizes and meaningless keys end in one `owt: error:` line.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "owt/core/safetensors.h"
#include "owt/data/image_codec.h"
#include "support/cli_runner.h"
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

// One line "owt: error: ..." on stderr containing every needle, exit code 1.
void expect_one_error_line(const CliResult& r, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("^owt: error: "))) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  for (const auto& n : needles) EXPECT_TRUE(has(r.err, n)) << n << " in " << r.err;
}

// Runs `command` through /bin/sh with stderr joined to stdout in one pipe, as `... 2>&1 | tee log`.
std::string joined_output(const std::string& command) {
  CliResult r = run_process({"/bin/sh", "-c", command + " 2>&1"});
  return r.out;
}

TEST(HardeningCli, PredictPrintsTheClassNamesOfTheModelFile) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV: no image decoding";
  TempDir dir;
  write_idx_dataset(dir.file("data"), "train", 256, 12, 12, 4, 1, false);
  write_idx_dataset(dir.file("data"), "t10k", 32, 12, 12, 4, 2, false);
  const std::string plain = tiny_model_yaml(dir.file("data"), 1, 32);
  const std::string named = replaced(plain, "mean:", "class_names: [circle, \"T-shirt/top\", square, ring], mean:");
  const std::string model = dir.write("named.yaml", named), run = dir.file("run");
  CliResult r = run_owt({"train", model, "--out", run, "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ckpt = run + "/checkpoints/last.safetensors";
  EXPECT_EQ(read_safetensors(ckpt).metadata.at("class_names"), "circle\nT-shirt/top\nsquare\nring");

  SyntheticIdx s = make_synthetic_idx(1, 12, 12, 4, 5);
  const std::string image = dir.file("x.png");
  write_bytes(image, encode_image(s.pixels.data(), 12, 12, 1, ".png"), false);
  r = run_owt({"predict", model, "--checkpoint", ckpt, "--top", "4", image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"circle", "T-shirt/top", "square", "ring"}) EXPECT_TRUE(has(r.out, name)) << r.out;
  // The checkpoint keeps the names: a model file without them still prints them.
  r = run_owt({"predict", dir.write("plain.yaml", plain), "--checkpoint", ckpt, "--top", "4", image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "T-shirt/top")) << r.out;
  // A checkpoint trained without names (IDX sets have none: "0".."3") and a model file with
  // names: the model file's names.
  const std::string run2 = dir.file("run2");
  ASSERT_EQ(run_owt({"train", dir.file("plain.yaml"), "--out", run2, "--no-progress"}).exit_code, 0);
  r = run_owt({"predict", model, "--checkpoint", run2 + "/checkpoints/last.safetensors", "--top", "4", image});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "square")) << r.out;
  EXPECT_FALSE(std::regex_search(r.out, std::regex("\\d\\. [0-3] "))) << r.out;
}

TEST(HardeningCli, PlanRunsOnAFileThatDescribesOnlyTheNetwork) {
  TempDir dir;
  const std::string net = dir.write("net.yaml",
                                    "name: net\n"
                                    "input: [3, 32, 32]\n"
                                    "classes: 10\n"
                                    "layers:\n"
                                    "  - {name: conv1, type: conv, filters: 16, size: 3, pad: 1}\n"
                                    "  - {name: relu1, type: relu}\n"
                                    "  - {name: fc1, type: linear, outputs: 64}\n"
                                    "  - {name: fc2, type: linear, outputs: 10}\n"
                                    "  - {name: loss, type: softmax_cross_entropy}\n"
                                    "parallel: {transition: pipelined}\n");
  CliResult r = run_owt({"plan", net, "--workers", "4", "--batch", "32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "net on 4 workers, batch 32 per worker")) << r.out;
  r = run_owt({"plan", net, "--workers", "4", "--batch", "32", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\"batch\": 32")) << r.out;
  // No solver, no --batch: say what to give.
  expect_one_error_line(run_owt({"plan", net, "--workers", "4"}), {net, "--batch"});
  // Training needs the data and solver sections.
  expect_one_error_line(run_owt({"train", net, "--out", dir.file("run")}),
                        {net + ":", "missing required field 'data'"});
  EXPECT_FALSE(fs::exists(dir.file("run")));
  // The shipped models still plan with their own solver.batch.
  r = run_owt({"plan", OWT_SOURCE_DIR "/models/alexnet_owt.yaml", "--workers", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "batch 128 per worker")) << r.out;
  // parallel: auto: the plan shows what it chose and the runner-up, and plans with the choice.
  std::string text = read_text(net);
  text.replace(text.find("{transition: pipelined}"), 23, "{transition: pipelined, default: auto, bandwidth_gbs: 1, tflops: 1}");
  const std::string automatic = dir.write("auto.yaml", text);
  r = run_owt({"plan", automatic, "--workers", "4", "--batch", "32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "parallel: auto, predicted from 1 GB/s, 1 TFLOP/s and overlap 0")) << r.out;
  EXPECT_TRUE(has(r.out, "chosen") && has(r.out, "runner-up")) << r.out;
  r = run_owt({"plan", automatic, "--workers", "4", "--batch", "32", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\"auto\": {\"inputs\"") && has(r.out, "\"first_model\"")) << r.out;
  // Names are quoted as JSON strings: a layer named fc"1 survives the round trip.
  text = read_text(net);
  text.replace(text.find("name: fc1,"), 10, "name: 'fc\"1',");
  const std::string quoted = dir.write("quoted.yaml", text);
  r = run_owt({"plan", quoted, "--workers", "4", "--batch", "32", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json plan = nlohmann::json::parse(r.out);
  EXPECT_EQ(plan["layers"][3]["name"], "fc\"1") << r.out;  // after conv1, relu1, the transition
}

// A profile measured on one GPU has no collectives to go with it (one GPU cannot time them):
// --bandwidth (and --overlap) put an assumed link under the measured layer times.
TEST(HardeningCli, PlanPutsAnAssumedLinkUnderAMeasuredProfile) {
  const std::string model = OWT_SOURCE_DIR "/models/fmnist.yaml";
  const std::string profile = OWT_SOURCE_DIR "/docs/step_model/profile_fmnist.json";
  auto plan = [&](const std::string& gbs) {
    CliResult r = run_owt({"plan", model, "--workers", "4", "--batch", "64", "--profile", profile,
                           "--bandwidth", gbs, "--overlap", "0", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
  };
  const nlohmann::json slow = plan("0.01"), fast = plan("1000");
  ASSERT_TRUE(slow.contains("prediction") && fast.contains("prediction"));
  EXPECT_EQ(slow["prediction"]["comm"], "assumed 0.01 GB/s per worker, overlap 0");
  // The layer times are the profile's either way; only the link differs.
  EXPECT_EQ(slow["step_seconds_one_worker"], fast["step_seconds_one_worker"]);
  EXPECT_GT(slow["prediction"]["hybrid"]["comm_seconds"].get<double>(),
            1000 * fast["prediction"]["hybrid"]["comm_seconds"].get<double>());
  EXPECT_GT(slow["step_seconds"].get<double>(), fast["step_seconds"].get<double>());
  // A profile without any link, and two links at once, are refused as flag errors (CLI11's
  // exit code and its "Run with --help" line), before anything is read or printed.
  auto refused = [](const CliResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 105) << r.err;
    EXPECT_TRUE(has(r.err, needle)) << needle << " in " << r.err;
    EXPECT_EQ(r.out, "");
  };
  refused(run_owt({"plan", model, "--workers", "4", "--profile", profile}),
          "--profile needs the link: --comm C.json (measured collectives) or --bandwidth GB/s");
  refused(run_owt({"plan", model, "--workers", "4", "--profile", profile, "--comm", profile,
                   "--bandwidth", "10"}),
          "give one");
  refused(run_owt({"plan", model, "--workers", "4", "--comm", profile}), "--comm goes with --profile");
}

TEST(HardeningCli, DataCheckTakesAFolderOfClassFoldersAndShowsNoLibraryLines) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  TempDir dir;
  const std::string root = dir.file("imagefolder");
  write_image_folder(root, ".", make_rgb_images(9, 16, 20, 3, 1), "mixed");
  CliResult r = run_owt({"data", "check", root, "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "format folder")) << r.out;
  EXPECT_TRUE(has(r.out, "all: 9 examples, 3 classes")) << r.out;
  EXPECT_EQ(r.err, "");
  // Damaged files: listed in the report, and nothing from libpng, libjpeg or OpenCV on stderr.
  std::string png = read_text(image_path(root, ".", make_rgb_images(9, 16, 20, 3, 1), 0, "mixed"));
  for (size_t i = 41; i + 12 < png.size(); ++i) png[i] ^= 0x5a;
  write_bytes(root + "/class_00/damaged.png", png, false);
  write_bytes(root + "/class_01/truncated.jpg", std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00", 11), false);
  write_bytes(root + "/class_02/forged.png",
              std::string("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x10\x00\x00\x00\x10\x00\x00", 24), false);
  r = run_owt({"data", "check", root});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "unreadable: 3")) << r.out;
  EXPECT_TRUE(has(r.out, "damaged.png")) << r.out;
  EXPECT_TRUE(has(r.out, "forged.png")) << r.out;
  EXPECT_FALSE(has(r.err, "libpng")) << r.err;
  EXPECT_FALSE(has(r.err, "JPEG")) << r.err;
  EXPECT_FALSE(has(r.err, "WARN")) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(HardeningCli, StdoutAndStderrComeOutInOrderThroughAPipe) {
  TempDir dir;
  // stdout "format idx", then an error on stderr: the error comes second.
  write_idx_dataset(dir.file("idx"), "train", 8, 4, 4, 2, 1, false);
  write_bytes(idx_labels_path(dir.file("idx"), "t10k", false), idx_labels_bytes(1, {0}), false);
  std::string out = joined_output(owt_binary() + " data check " + dir.file("idx"));
  const size_t format = out.find("format idx"), train = out.find("train: 8 examples"),
               error = out.find("owt: error: ");
  ASSERT_NE(format, std::string::npos) << out;
  ASSERT_NE(error, std::string::npos) << out;
  EXPECT_LT(format, train) << out;
  EXPECT_LT(train, error) << out;
  if (!have_image_codec()) return;
  // A warning on stderr while the set opens sits between the stdout lines around it.
  write_image_folder(dir.file("img"), "train", make_rgb_images(4, 8, 8, 2, 1), ".png");
  write_bytes(dir.file("img/train/class_00/notes.txt"), "not an image", false);
  out = joined_output(owt_binary() + " data check " + dir.file("img"));
  const size_t f = out.find("format folder"), w = out.find("owt: warning: skipping"),
               report = out.find("train: 4 examples");
  ASSERT_NE(f, std::string::npos) << out;
  ASSERT_NE(w, std::string::npos) << out;
  ASSERT_NE(report, std::string::npos) << out;
  EXPECT_LT(f, w) << out;
  EXPECT_LT(w, report) << out;
  // Training: the epoch lines (stderr) come before the final summary (stdout), and whatever
  // the run prints on stdout first (the CPU note of a CUDA build) before the epoch lines.
  write_idx_dataset(dir.file("idx"), "t10k", 8, 4, 4, 2, 2, false);
  std::string text = tiny_model_yaml(dir.file("idx"), 1, 4);
  text = replaced(text, "input: [1, 12, 12]", "input: [1, 4, 4]");
  text = replaced(text, "outputs: 4,", "outputs: 2,");
  text = replaced(text, "classes: 4", "classes: 2");
  const std::string model = dir.write("m.yaml", text);
  out = joined_output(owt_binary() + " train " + model + " --out " + dir.file("run") + " --device auto");
  const size_t epoch = out.find("epoch 1/1"), trained = out.find("owt: trained");
  ASSERT_NE(epoch, std::string::npos) << out;
  ASSERT_NE(trained, std::string::npos) << out;
  EXPECT_LT(epoch, trained) << out;
  const size_t note = out.find("running on the CPU");
  if (note != std::string::npos) {
    EXPECT_LT(note, epoch) << out;
  }
}

TEST(HardeningCli, ForgedSizesAndMeaninglessKeysEndInOneErrorLine) {
  TempDir dir;
  write_idx_dataset(dir.file("data"), "train", 64, 12, 12, 4, 1, false);
  write_idx_dataset(dir.file("data"), "t10k", 16, 12, 12, 4, 2, false);
  const std::string base = tiny_model_yaml(dir.file("data"));
  // Item 7: fc_update: block with the allgather transition.
  const std::string model = dir.write(
      "block.yaml", replaced(replaced(base, "fc_update: step", "fc_update: block"),
                             "transition: pipelined", "transition: allgather"));
  expect_one_error_line(run_owt({"train", model, "--out", dir.file("r1")}),
                        {model + ":14:", "fc_update", "pipelined"});
  EXPECT_FALSE(fs::exists(dir.file("r1")));
  // Item 2: a 24-byte IDX images file that claims 2^32 - 1 images of 32767 x 32767.
  const std::string images = idx_images_path(dir.file("data"), "train", false);
  write_bytes(images, std::string("\0\0\x08\x03\xff\xff\xff\xff\0\0\x7f\xff\0\0\x7f\xffpixels..", 24), false);
  expect_one_error_line(run_owt({"train", dir.write("m.yaml", base), "--out", dir.file("r2")}),
                        {images, "4294967295 images", "at most"});
  EXPECT_FALSE(fs::exists(dir.file("r2")));
  // A forged PNG given to predict: refused before decoding, one line naming it.
  if (have_image_codec()) {
    write_idx_dataset(dir.file("data"), "train", 64, 12, 12, 4, 1, false);
    ASSERT_EQ(run_owt({"train", dir.file("m.yaml"), "--out", dir.file("r3"), "--no-progress",
                       "--max-steps", "1"}).exit_code, 0);
    const std::string png = dir.file("forged.png");
    write_bytes(png, std::string("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x7f\xff\x00\x00\x7f\xff\x00\x00", 24), false);
    expect_one_error_line(run_owt({"predict", dir.file("m.yaml"), "--checkpoint",
                                   dir.file("r3/checkpoints/last.safetensors"), png}),
                          {png, "2147418112x2147418112", "at most"});
  }
}

}  // namespace
}  // namespace owt::test
