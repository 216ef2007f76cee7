// Test fixture: writes IDX data sets (MNIST layout), either learnable synthetic ones or
// arbitrary, possibly corrupt, bytes for the reader's error tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace owt::test {

// Synthetic examples: class k is a bright blob at the centre of cell k of a ceil(sqrt(classes))
// grid, jittered by up to one pixel, over uniform noise; label of example i is i % classes.
struct SyntheticIdx {
  int n = 0, h = 0, w = 0, classes = 0;
  std::vector<uint8_t> pixels;  // (n, h, w)
  std::vector<uint8_t> labels;  // (n)
};
SyntheticIdx make_synthetic_idx(int n, int h, int w, int classes, uint64_t seed);

// Bytes of an IDX images file (magic, n, h, w, pixels) and labels file (magic, n, labels).
// `magic` and `n` may be set to anything, to build corrupt files.
std::string idx_images_bytes(uint32_t n, uint32_t h, uint32_t w, const std::vector<uint8_t>& pixels,
                             uint32_t magic = 0x00000803);
std::string idx_labels_bytes(uint32_t n, const std::vector<uint8_t>& labels,
                             uint32_t magic = 0x00000801);

// <dir>/<split>-images-idx3-ubyte[.gz] and <dir>/<split>-labels-idx1-ubyte[.gz]; split is the
// file prefix, "train" or "t10k" ("test" is taken as "t10k").
std::string idx_images_path(const std::string& dir, const std::string& split, bool gz);
std::string idx_labels_path(const std::string& dir, const std::string& split, bool gz);

// Writes `bytes` to `path`, gzip-compressed when `gz`. Creates parent directories.
void write_bytes(const std::string& path, const std::string& bytes, bool gz);

// Writes make_synthetic_idx(n, h, w, classes, seed) as <dir>/<split>-{images,labels}-* files.
void write_idx_dataset(const std::string& dir, const std::string& split, int n, int h, int w,
                       int classes, uint64_t seed, bool gz);

}  // namespace owt::test
