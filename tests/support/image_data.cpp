// Generated CIFAR batches and image folders for the data tests: smooth learnable images (so
// JPEG round trips stay close) written as CIFAR records or encoded files.
#include "support/image_data.h"

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "owt/core/philox.h"
#include "owt/data/image_codec.h"
#include "support/idx_writer.h"

namespace owt::test {

RgbImages make_rgb_images(int n, int h, int w, int classes, uint64_t seed) {
  RgbImages d;
  d.n = n, d.h = h, d.w = w, d.classes = classes;
  d.hwc.resize(static_cast<size_t>(n) * h * w * 3);
  d.labels.resize(n);
  const RngKey key = rng_key(seed, Purpose::Test);
  for (int i = 0; i < n; ++i) {
    const int k = i % classes;
    d.labels[i] = static_cast<uint8_t>(k);
    // A blob whose position and colour depend on the class, jittered per image.
    const float cy = h * (0.25f + 0.5f * ((k * 7) % 10) / 10.0f) + 2 * philox_uniform(key, i, 1, 0, 0);
    const float cx = w * (0.25f + 0.5f * ((k * 3) % 10) / 10.0f) + 2 * philox_uniform(key, i, 2, 0, 0);
    const float sigma = 0.2f * std::min(h, w);
    uint8_t* img = d.hwc.data() + static_cast<size_t>(i) * h * w * 3;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float blob = std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * sigma * sigma));
        for (int c = 0; c < 3; ++c) {
          const float tint = 0.4f + 0.6f * (((k + c) % 3) / 2.0f);
          const float noise = 20.0f * philox_uniform(key, i, static_cast<uint32_t>(y * w + x), c + 3, 0);
          img[(y * w + x) * 3 + c] = static_cast<uint8_t>(std::min(255.0f, 30 + 200 * tint * blob + noise));
        }
      }
  }
  return d;
}

std::string cifar_bytes(const RgbImages& d, int label_bytes) {
  if (d.h != 32 || d.w != 32) throw std::invalid_argument("cifar_bytes: images must be 32x32");
  std::string s;
  for (int i = 0; i < d.n; ++i) {
    if (label_bytes == 2) s.push_back(static_cast<char>(d.labels[i] / 5));
    s.push_back(static_cast<char>(d.labels[i]));
    const uint8_t* img = d.image(i);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 32 * 32; ++p) s.push_back(static_cast<char>(img[p * 3 + c]));
  }
  return s;
}

void write_cifar_dataset(const std::string& dir, int classes, int n_train, int n_test,
                         uint64_t seed) {
  const int lb = classes == 100 ? 2 : 1;
  RgbImages train = make_rgb_images(n_train, 32, 32, classes, seed);
  RgbImages test = make_rgb_images(n_test, 32, 32, classes, seed + 1);
  write_bytes(dir + (classes == 100 ? "/train.bin" : "/data_batch_1.bin"), cifar_bytes(train, lb), false);
  write_bytes(dir + (classes == 100 ? "/test.bin" : "/test_batch.bin"), cifar_bytes(test, lb), false);
}

std::string image_path(const std::string& root, const std::string& split, const RgbImages& d,
                       int i, const std::string& ext) {
  const std::string e = ext == "mixed" ? (i % 2 ? ".jpg" : ".png") : ext;
  char name[64];
  std::snprintf(name, sizeof name, "/class_%02d/img_%04d", d.labels[i], i);
  return root + "/" + split + name + e;
}

void write_image_folder(const std::string& root, const std::string& split, const RgbImages& d,
                        const std::string& ext) {
  for (int i = 0; i < d.n; ++i) {
    const std::string path = image_path(root, split, d, i, ext);
    const std::string e = std::filesystem::path(path).extension().string();
    write_bytes(path, encode_image(d.image(i), d.h, d.w, 3, e, 95), false);
  }
}

}  // namespace owt::test
