// Dataset basics shared by every reader: default class names, read_image and source,
// `open_dataset` (the model file's `data.format` to a reader), format detection and warnings.
#include "owt/data/dataset.h"

#include <cstdio>
#include <filesystem>
#include <mutex>

#include "folder_listing.h"
#include "owt/core/error.h"

namespace owt {

namespace fs = std::filesystem;

std::vector<std::string> Dataset::class_names() const {
  std::vector<std::string> names;
  for (int c = 0; c < classes(); ++c) names.push_back(std::to_string(c));
  return names;
}

void Dataset::read_image(int64_t i, Image& out) const {
  const Shape s = example_shape();
  out.resize(s[0], s[1], s[2]);
  read(i, out.pixels.data());
}

std::string Dataset::source(int64_t i) const { return cat("example ", i); }

std::unique_ptr<Dataset> open_dataset(const std::string& format, const std::string& dir,
                                      const std::string& split, DatasetOptions options) {
  if (format == "idx") return open_idx_dataset(dir, split);
  if (format == "cifar10") return open_cifar_dataset(dir, split, 10);
  if (format == "cifar100") return open_cifar_dataset(dir, split, 100);
  if (format == "folder") return open_folder_dataset(dir, split, options);
  if (format == "packed") return open_packed_dataset(dir, split);
  if (format == "synthetic")
    throw Error(cat("data.format: synthetic sets have no files to open at ", dir,
                    ": their examples are generated from the model file (data.train_examples, "
                    "data.test_examples), by open_synthetic_dataset"));
  throw Error(cat("data.format: unknown dataset format '", format, "' for ", dir,
                  " (supported: idx, cifar10, cifar100, folder, packed; synthetic from a model file)"));
}

namespace {

// Whether `path` holds class folders with images directly (torchvision's ImageFolder root):
// some non-hidden subfolder has a file with an image extension.
bool is_class_folder_root(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  for (fs::directory_iterator d(path, ec), end; !ec && d != end; d.increment(ec)) {
    if (d->path().filename().string()[0] == '.' || !d->is_directory(ec)) continue;
    std::error_code ec2;
    for (fs::directory_iterator f(d->path(), ec2); !ec2 && f != end; f.increment(ec2))
      if (is_image_file(f->path().filename().string())) return true;
  }
  return false;
}

}  // namespace

std::string detect_format(const std::string& path) {
  auto has = [&](const std::string& name) { return fs::exists(fs::path(path) / name); };
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".owtpack") return "packed";
  if (has("train.owtpack") || has("val.owtpack") || has("test.owtpack")) return "packed";
  if (has("train-images-idx3-ubyte") || has("train-images-idx3-ubyte.gz") ||
      has("t10k-images-idx3-ubyte") || has("t10k-images-idx3-ubyte.gz"))
    return "idx";
  if (has("cifar-10-batches-bin") || has("data_batch_1.bin") || has("test_batch.bin")) return "cifar10";
  if (has("cifar-100-binary") || has("train.bin") || has("test.bin")) return "cifar100";
  if (has("train") || has("val") || has("test")) return "folder";
  if (is_class_folder_root(path)) return "folder";
  return "";
}

void warn(const std::string& message) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "owt: warning: %s\n", message.c_str());
}

}  // namespace owt
