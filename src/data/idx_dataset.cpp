// IdxDataset: MNIST / Fashion-MNIST IDX files (raw or gzip), loaded whole into memory as
// uint8. Every malformed input is an owt::Error naming the file and what was expected; the
// headers are read and bounded (core/limits.h) before any data is allocated.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "owt/core/error.h"
#include "owt/core/limits.h"
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

uint32_t be32(const uint8_t* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

// An IDX file, raw or gzip (zlib reads plain files transparently), read front to back: the
// header first, so that sizes are checked before the data is allocated, then exactly the
// declared data.
class IdxFile {
 public:
  IdxFile(std::string path, const char* what) : path_(std::move(path)), what_(what) {
    f_ = gzopen(path_.c_str(), "rb");
    if (!f_) throw Error(cat(path_, ": cannot open for reading"));
  }
  ~IdxFile() { gzclose(f_); }
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;

  // The magic and `ndims` dimensions; errors name the file for a short or foreign header.
  std::vector<uint32_t> header(uint32_t magic, int ndims) {
    uint8_t b[16];
    const size_t want = 4 + 4 * static_cast<size_t>(ndims), got = read(b, want);
    if (got < 4)
      throw Error(cat(path_, ": truncated ", what_, " file: ", got,
                      " bytes, too short for the 4-byte IDX magic"));
    const uint32_t found = be32(b);
    if (found != magic)
      throw Error(cat(path_, ": wrong magic number for an IDX ", what_, " file: expected ",
                      hex32(magic), ", found ", hex32(found)));
    if (got < want)
      throw Error(cat(path_, ": truncated ", what_, " file: expected a ", want,
                      "-byte header, found ", got, " bytes"));
    std::vector<uint32_t> dims;
    for (int d = 0; d < ndims; ++d) dims.push_back(be32(b + 4 + 4 * d));
    return dims;
  }

  // Exactly `expected` bytes of data after the header (`data` names them in messages); a file
  // with fewer or more is an error. A plain file's size is checked before anything is
  // allocated; a gzip stream grows the buffer only as its bytes arrive.
  std::vector<uint8_t> data(uint64_t expected, const std::string& data_what, size_t header_bytes) {
    const bool plain = gzdirect(f_) == 1;
    if (plain) {
      struct stat st;
      if (::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        const uint64_t size = static_cast<uint64_t>(st.st_size);
        const uint64_t found = size > header_bytes ? size - header_bytes : 0;
        if (found != expected) mismatch(expected, data_what, found, false);
      }
    }
    std::vector<uint8_t> out;
    out.reserve(static_cast<size_t>(std::min<uint64_t>(expected, uint64_t{64} << 20)));
    constexpr uint64_t kChunk = 1 << 20;
    while (out.size() < expected) {
      const size_t old = out.size();
      out.resize(old + static_cast<size_t>(std::min<uint64_t>(kChunk, expected - old)));
      const size_t got = read(out.data() + old, out.size() - old);
      out.resize(old + got);
      if (got == 0) {
        int err = Z_OK;
        gzerror(f_, &err);
        if (err == Z_BUF_ERROR)
          throw Error(cat(path_, ": truncated gzip stream (unexpected end of file after ",
                          header_bytes + out.size(), " decompressed bytes)"));
        mismatch(expected, data_what, out.size(), false);
      }
    }
    uint8_t extra;
    if (read(&extra, 1) != 0) mismatch(expected, data_what, expected, true);
    return out;
  }

 private:
  // `found` bytes of data (`more`: more than `expected`, how many unknown).
  [[noreturn]] void mismatch(uint64_t expected, const std::string& data_what, uint64_t found,
                             bool more) {
    throw Error(cat(path_, ": ", !more && found < expected ? "truncated" : "oversized", " ", what_,
                    " file: expected ", expected, " bytes of ", data_what, ", found ",
                    more ? std::string("more") : cat(found)));
  }

  // Up to `n` bytes; fewer only at the end of the file. Read errors name the file.
  size_t read(void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(f_, static_cast<uint8_t*>(dst) + done, chunk);
      if (got < 0) {
        int err = 0;
        const std::string msg = gzerror(f_, &err);
        throw Error(cat(path_, ": read failed (", msg, ")"));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  std::string path_;
  const char* what_;
  gzFile f_ = nullptr;
};

class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path) {
    IdxFile img(images_path, "images");
    std::vector<uint32_t> d = img.header(kImagesMagic, 3);
    n_ = d[0];
    h_ = d[1];
    w_ = d[2];
    if (h_ == 0 || w_ == 0)
      throw Error(cat(images_path, ": image size ", h_, "x", w_, " in the header; expected both > 0"));
    if (h_ > limits::kImageSide || w_ > limits::kImageSide)
      throw Error(cat(images_path, ": image size ", h_, "x", w_, " in the header; IDX images are "
                      "at most ", limits::kImageSide, " pixels a side"));
    const uint64_t expected = static_cast<uint64_t>(n_) * h_ * w_;  // < 2^62
    if (expected > limits::kIdxBytes)
      throw Error(cat(images_path, ": the header declares ", n_, " images of ", h_, "x", w_, " (",
                      expected, " bytes of pixel data); owt reads IDX files of at most ",
                      limits::kIdxBytes, " bytes"));

    IdxFile lab(labels_path, "labels");
    const uint32_t nl = lab.header(kLabelsMagic, 1)[0];
    if (nl != n_)
      throw Error(cat("IDX dataset: image/label count mismatch: ", images_path, " holds ", n_,
                      " images but ", labels_path, " holds ", nl, " labels"));
    pixels_ = img.data(expected, cat("pixel data (", n_, " x ", h_, " x ", w_, ")"), 16);
    labels_ = lab.data(nl, "label data", 8);
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
