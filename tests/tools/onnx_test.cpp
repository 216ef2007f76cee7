// ONNX export (tools/torch_interop.py to-onnx, tools/onnx_export.py): for the fmnist and
// cifar10 model files, on small generated data sets, ONNX Runtime's logits on 64 test images
// equal `owt eval --logits` of the same checkpoint within 1e-4 (onnx_check.py in the venv).
#include "support/idx_writer.h"
#include "support/image_data.h"
#include "support/temp_dir.h"
#include "tools_support.h"

namespace owt::test {
namespace {

void export_and_compare(const std::string& model_file, const std::string& data, const std::string& format) {
  const std::string python = venv_python();
  TempDir dir;
  const std::string model = source_path(model_file), run = dir.file("run");
  CliResult t = run_owt({"train", model, "--data", data, "--out", run, "--max-steps", "3", "--batch", "16",
                         "--threads", "2", "--no-progress"}, 600);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string ck = run + "/checkpoints/last.safetensors";
  CliResult e = run_owt({"eval", model, "--checkpoint", ck, "--data", data, "--logits", dir.file("owt.npy"),
                         "--threads", "2", "--no-progress"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const std::string onnx = dir.file("model.onnx");
  CliResult x = run_python(python, source_path("tools/torch_interop.py"), {"to-onnx", model, ck, onnx});
  ASSERT_EQ(x.exit_code, 0) << x.out << x.err;
  CliResult c = run_python(python, source_path("tests/tools/onnx_check.py"),
                           {model, onnx, dir.file("owt.npy"), data, format});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  std::printf("%s", c.out.c_str());
}

TEST(Onnx, FashionMnistLogitsEqualOwtEval) {
  TempDir dir;
  const std::string data = dir.file("fmnist");
  write_idx_dataset(data, "train", 96, 28, 28, 10, 1, true);
  write_idx_dataset(data, "t10k", 64, 28, 28, 10, 2, true);
  export_and_compare("models/fmnist.yaml", data, "idx");
}

TEST(Onnx, Cifar10LogitsEqualOwtEval) {
  TempDir dir;
  const std::string data = dir.file("cifar10");
  write_cifar_dataset(data, 10, 96, 64, 3);
  export_and_compare("models/cifar10.yaml", data, "cifar10");
}

TEST(Onnx, OpsetBelow13IsRefused) {
  const std::string python = venv_python();
  CliResult r = run_python(python, source_path("tools/torch_interop.py"),
                           {"to-onnx", source_path("models/fmnist.yaml"), "/nonexistent.safetensors",
                            "/tmp/x.onnx", "--opset", "11"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("torch_interop: error: --opset 11: owt exports with opset 13 or newer"),
            std::string::npos) << r.err;
}

}  // namespace
}  // namespace owt::test
