// CifarDataset: the CIFAR-10 / CIFAR-100 binary batches, loaded whole into memory as uint8.
// A file whose size is not a whole number of records, or a label out of range, is an Error
// naming the file (counts that disagree are errors, never skipped). Sizes are checked
// against core/limits.h before anything is read.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "owt/data/dataset.h"

namespace owt {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kPixels = 3 * 32 * 32;  // (3, 32, 32) RGB planes

// The size of a regular file, checked against `limit` before anything is read.
uint64_t checked_size(const std::string& path, uint64_t limit, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(cat(path, ": not a regular file"));
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw Error(cat(path, ": cannot read its size (", ec.message(), ")"));
  if (size > limit)
    throw Error(cat(path, ": ", size, " bytes; owt reads ", what, " of at most ", limit, " bytes"));
  return size;
}

std::vector<uint8_t> read_file(const std::string& path, uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(cat(path, ": cannot open for reading"));
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (in.bad() || static_cast<uint64_t>(in.gcount()) != size)
    throw Error(cat(path, ": read failed (", in.gcount(), " of ", size, " bytes)"));
  return bytes;
}

// Class names from a text file, one per line (batches.meta.txt, fine_label_names.txt).
std::vector<std::string> read_names(const std::string& path) {
  checked_size(path, limits::kNamesFileBytes, "class name files");
  std::vector<std::string> names;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

class CifarDataset : public Dataset {
 public:
  CifarDataset(const std::vector<std::string>& files, int classes, const std::string& names_file)
      : classes_(classes), files_(files) {
    const int64_t label_bytes = classes == 100 ? 2 : 1, record = label_bytes + kPixels;
    for (const std::string& path : files) {
      // The record count comes from the file's size: checked before anything is read.
      const uint64_t size = checked_size(path, limits::kCifarFileBytes, "CIFAR batches");
      if (size == 0 || size % static_cast<uint64_t>(record) != 0)
        throw Error(cat(path, ": truncated or malformed CIFAR-", classes, " batch: ", size,
                        " bytes is not a whole number of ", record, "-byte records (", label_bytes,
                        " label byte", label_bytes > 1 ? "s" : "", " + ", kPixels, " pixels)"));
      const std::vector<uint8_t> b = read_file(path, size);
      pixels_.reserve(pixels_.size() + size);
      const int64_t n = static_cast<int64_t>(b.size()) / record;
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* r = b.data() + i * record;
        const int label = r[label_bytes - 1];  // CIFAR-100: (coarse, fine); the fine label
        if (label >= classes)
          throw Error(cat(path, ": record ", i, " has label ", label, "; CIFAR-", classes,
                          " labels are 0..", classes - 1));
        labels_.push_back(static_cast<uint8_t>(label));
        pixels_.insert(pixels_.end(), r + label_bytes, r + record);
        file_of_.push_back(static_cast<int32_t>(&path - files.data()));
      }
    }
    if (!names_file.empty() && fs::exists(names_file)) {
      names_ = read_names(names_file);
      if (static_cast<int>(names_.size()) != classes)
        throw Error(cat(names_file, ": ", names_.size(), " class names; expected ", classes));
    }
  }

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape example_shape() const override { return Shape{3, 32, 32}; }
  int classes() const override { return classes_; }
  std::vector<std::string> class_names() const override {
    return names_.empty() ? Dataset::class_names() : names_;
  }
  int32_t label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  void read(int64_t i, float* out) const override {
    const uint8_t* p = pixels_.data() + i * kPixels;
    for (int64_t k = 0; k < kPixels; ++k) out[k] = p[k] / 255.0f;
  }
  std::string source(int64_t i) const override {
    return cat(files_[file_of_[static_cast<size_t>(i)]], " (example ", i, ")");
  }

 private:
  int classes_;
  std::vector<std::string> files_, names_;
  std::vector<uint8_t> pixels_;   // (N, 3, 32, 32)
  std::vector<uint8_t> labels_;   // (N)
  std::vector<int32_t> file_of_;  // (N) index into files_
};

}  // namespace

std::unique_ptr<Dataset> open_cifar_dataset(const std::string& dir_in, const std::string& split,
                                            int classes) {
  if (classes != 10 && classes != 100) throw Error(cat("CIFAR: ", classes, " classes; expected 10 or 100"));
  if (split != "train" && split != "test")
    throw Error(cat("CIFAR dataset ", dir_in, ": unknown split '", split, "' (expected train or test)"));
  // The folder itself, or the one the tarball unpacks to inside it.
  std::string dir = dir_in;
  const char* sub = classes == 10 ? "cifar-10-batches-bin" : "cifar-100-binary";
  if (fs::is_directory(fs::path(dir) / sub)) dir = (fs::path(dir) / sub).string();
  std::vector<std::string> names;
  if (classes == 10 && split == "train")
    for (int k = 1; k <= 5; ++k) names.push_back(cat("data_batch_", k, ".bin"));
  else if (classes == 10)
    names = {"test_batch.bin"};
  else
    names = {split + ".bin"};
  // CIFAR-10 train: data_batch_1.bin is required; later batches may be absent only at the end.
  std::vector<std::string> files;
  std::string missing;
  for (const std::string& n : names) {
    std::string p = (fs::path(dir) / n).string();
    if (fs::is_regular_file(p)) {
      if (!missing.empty())
        throw Error(cat("CIFAR-", classes, " dataset: ", p, " exists but ", missing, " is missing"));
      files.push_back(p);
    } else if (files.empty()) {
      throw Error(cat("CIFAR-", classes, " dataset: missing file ", p));
    } else if (missing.empty()) {
      missing = p;
    }
  }
  const std::string meta = classes == 10 ? "batches.meta.txt" : "fine_label_names.txt";
  return std::make_unique<CifarDataset>(files, classes, (fs::path(dir) / meta).string());
}

}  // namespace owt
