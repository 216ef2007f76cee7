// Writes IDX files for tests: synthetic learnable images (blob per class plus Philox noise)
// and raw header/payload bytes, plain or gzip-compressed.
#include "support/idx_writer.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "owt/core/philox.h"

namespace owt::test {
namespace {

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xFF));
}

// "test" is accepted as an alias of the file prefix "t10k", as open_idx_dataset maps it.
std::string prefix(const std::string& split) { return split == "test" ? "t10k" : split; }

}  // namespace

SyntheticIdx make_synthetic_idx(int n, int h, int w, int classes, uint64_t seed) {
  if (n < 0 || h <= 0 || w <= 0 || classes < 1 || classes > 256)
    throw std::invalid_argument("make_synthetic_idx: bad n/h/w/classes");
  SyntheticIdx d;
  d.n = n; d.h = h; d.w = w; d.classes = classes;
  d.pixels.resize(static_cast<size_t>(n) * h * w);
  d.labels.resize(n);
  const RngKey key = rng_key(seed, Purpose::Test);
  const int grid = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(classes))));
  const float cell_h = static_cast<float>(h) / grid, cell_w = static_cast<float>(w) / grid;
  const float sigma = std::max(0.75f, 0.3f * std::min(cell_h, cell_w));
  for (int i = 0; i < n; ++i) {
    const int k = i % classes;
    d.labels[i] = static_cast<uint8_t>(k);
    // Jitter of -1, 0 or +1 pixel in each direction.
    const float jy = std::floor(philox_uniform(key, i, 0, 1, 0) * 3.0f) - 1.0f;
    const float jx = std::floor(philox_uniform(key, i, 0, 2, 0) * 3.0f) - 1.0f;
    const float cy = (k / grid + 0.5f) * cell_h - 0.5f + jy;
    const float cx = (k % grid + 0.5f) * cell_w - 0.5f + jx;
    uint8_t* img = d.pixels.data() + static_cast<size_t>(i) * h * w;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float r2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
        const float noise = 40.0f * philox_uniform(key, i, static_cast<uint32_t>(y * w + x), 0, 0);
        const float v = 215.0f * std::exp(-r2 / (2.0f * sigma * sigma)) + noise;
        img[y * w + x] = static_cast<uint8_t>(std::min(255.0f, v));
      }
  }
  return d;
}

std::string idx_images_bytes(uint32_t n, uint32_t h, uint32_t w, const std::vector<uint8_t>& pixels,
                             uint32_t magic) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, n);
  put_be32(s, h);
  put_be32(s, w);
  s.append(pixels.begin(), pixels.end());
  return s;
}

std::string idx_labels_bytes(uint32_t n, const std::vector<uint8_t>& labels, uint32_t magic) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, n);
  s.append(labels.begin(), labels.end());
  return s;
}

std::string idx_images_path(const std::string& dir, const std::string& split, bool gz) {
  return dir + "/" + prefix(split) + "-images-idx3-ubyte" + (gz ? ".gz" : "");
}

std::string idx_labels_path(const std::string& dir, const std::string& split, bool gz) {
  return dir + "/" + prefix(split) + "-labels-idx1-ubyte" + (gz ? ".gz" : "");
}

void write_bytes(const std::string& path, const std::string& bytes, bool gz) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  if (!gz) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("write_bytes: cannot write " + path);
    return;
  }
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("write_bytes: cannot open " + path);
  const int written = bytes.empty() ? 0 : gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  if (gzclose(f) != Z_OK || written != static_cast<int>(bytes.size()))
    throw std::runtime_error("write_bytes: gzip write failed for " + path);
}

void write_idx_dataset(const std::string& dir, const std::string& split, int n, int h, int w,
                       int classes, uint64_t seed, bool gz) {
  SyntheticIdx d = make_synthetic_idx(n, h, w, classes, seed);
  write_bytes(idx_images_path(dir, split, gz), idx_images_bytes(n, h, w, d.pixels), gz);
  write_bytes(idx_labels_path(dir, split, gz), idx_labels_bytes(n, d.labels), gz);
}

}  // namespace owt::test
