// IdxDataset: MNIST / Fashion-MNIST IDX files (raw or gzip), loaded whole into memory as
// uint8. Every malformed input is an owt::Error naming the file and what was expected.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "owt/core/error.h"
#include "owt/data/dataset.h"

namespace owt {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dims (N, H, W)
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dim (N)

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// <dir>/<stem>, or <dir>/<stem>.gz when only that exists.
std::string find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::string plain = (fs::path(dir) / stem).string(), gz = plain + ".gz";
  if (fs::is_regular_file(plain)) return plain;
  if (fs::is_regular_file(gz)) return gz;
  throw Error(cat("IDX dataset: missing file: neither ", plain, " nor ", gz, " exists"));
}

// The whole (decompressed) content of `path`; zlib reads plain files transparently.
std::vector<uint8_t> read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(cat(path, ": cannot open for reading"));
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    size_t old = bytes.size();
    bytes.resize(old + kChunk);
    int got = gzread(f, bytes.data() + old, static_cast<unsigned>(kChunk));
    if (got < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw Error(cat(path, ": read failed (", msg, ")"));
    }
    bytes.resize(old + static_cast<size_t>(got));
    if (got == 0) break;
  }
  int err = Z_OK;
  gzerror(f, &err);
  gzclose(f);
  if (err == Z_BUF_ERROR)
    throw Error(cat(path, ": truncated gzip stream (unexpected end of file after ", bytes.size(),
                    " decompressed bytes)"));
  return bytes;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) |
         uint32_t(b[at + 3]);
}

// Checks the header of an IDX file with `ndims` dimensions; returns the dimensions.
std::vector<uint32_t> parse_header(const std::vector<uint8_t>& b, const std::string& path,
                                   uint32_t magic, int ndims, const char* what) {
  size_t header = 4 + 4 * static_cast<size_t>(ndims);
  if (b.size() < 4)
    throw Error(cat(path, ": truncated ", what, " file: ", b.size(),
                    " bytes, too short for the 4-byte IDX magic"));
  uint32_t found = be32(b, 0);
  if (found != magic)
    throw Error(cat(path, ": wrong magic number for an IDX ", what, " file: expected ",
                    hex32(magic), ", found ", hex32(found)));
  if (b.size() < header)
    throw Error(cat(path, ": truncated ", what, " file: expected a ", header,
                    "-byte header, found ", b.size(), " bytes"));
  std::vector<uint32_t> dims;
  for (int d = 0; d < ndims; ++d) dims.push_back(be32(b, 4 + 4 * d));
  return dims;
}

class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path) {
    std::vector<uint8_t> img = read_all(images_path);
    std::vector<uint32_t> d = parse_header(img, images_path, kImagesMagic, 3, "images");
    n_ = d[0];
    h_ = d[1];
    w_ = d[2];
    if (h_ == 0 || w_ == 0)
      throw Error(cat(images_path, ": image size ", h_, "x", w_, " in the header; expected both > 0"));
    uint64_t expected = static_cast<uint64_t>(n_) * h_ * w_, found = img.size() - 16;
    if (found != expected)
      throw Error(cat(images_path, ": ", found < expected ? "truncated" : "oversized",
                      " images file: expected ", expected, " bytes of pixel data (", n_, " x ",
                      h_, " x ", w_, "), found ", found));
    pixels_.assign(img.begin() + 16, img.end());

    std::vector<uint8_t> lab = read_all(labels_path);
    uint32_t nl = parse_header(lab, labels_path, kLabelsMagic, 1, "labels")[0];
    uint64_t found_labels = lab.size() - 8;
    if (found_labels != nl)
      throw Error(cat(labels_path, ": ", found_labels < nl ? "truncated" : "oversized",
                      " labels file: expected ", nl, " bytes of label data, found ", found_labels));
    if (nl != n_)
      throw Error(cat("IDX dataset: image/label count mismatch: ", images_path, " holds ", n_,
                      " images but ", labels_path, " holds ", nl, " labels"));
    labels_.assign(lab.begin() + 8, lab.end());
    int max_label = 0;
    for (uint8_t l : labels_) max_label = std::max(max_label, static_cast<int>(l));
    classes_ = max_label + 1;
  }

  int64_t size() const override { return n_; }
  Shape example_shape() const override { return Shape{1, h_, w_}; }
  int classes() const override { return classes_; }
  int32_t label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  void read(int64_t i, float* out) const override {
    const int64_t hw = h_ * w_;
    const uint8_t* p = pixels_.data() + i * hw;
    for (int64_t k = 0; k < hw; ++k) out[k] = p[k] / 255.0f;
  }

 private:
  int64_t n_ = 0, h_ = 0, w_ = 0;
  int classes_ = 1;
  std::vector<uint8_t> pixels_;  // (N, H, W)
  std::vector<uint8_t> labels_;  // (N)
};

}  // namespace

std::unique_ptr<Dataset> open_idx_dataset(const std::string& dir, const std::string& split) {
  std::string prefix;
  if (split == "train") prefix = "train";
  else if (split == "test") prefix = "t10k";
  else throw Error(cat("IDX dataset ", dir, ": unknown split '", split, "' (expected train or test)"));
  std::string images = find_file(dir, prefix + "-images-idx3-ubyte");
  std::string labels = find_file(dir, prefix + "-labels-idx1-ubyte");
  return std::make_unique<IdxDataset>(images, labels);
}

}  // namespace owt
