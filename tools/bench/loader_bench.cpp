// owt_loader_bench: data-loader throughput for the AlexNet pipeline — 256x256 JPEGs in an image
// folder, decoded, resized, randomly cropped to 224x224, flipped, lit and normalised by
// BatchLoader — in images/s with 1 decode thread and with N. Prints numbers; not a test.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <unistd.h>

#include "owt/core/philox.h"
#include "owt/data/image_codec.h"
#include "owt/data/loader.h"

namespace fs = std::filesystem;
using namespace owt;

// Smooth colour gradients, blobs and mild noise (JPEG sizes close to ImageNet's at 256 px).
std::string make_jpeg(int i) {
  const int s = 256;
  std::vector<uint8_t> px(s * s * 3);
  const RngKey key = rng_key(42, Purpose::Test);
  const float cx = 256 * philox_uniform(key, i, 0, 0, 0), cy = 256 * philox_uniform(key, i, 1, 0, 0);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x)
      for (int c = 0; c < 3; ++c) {
        float r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        float v = 60 + 0.3f * (c == 0 ? x : c == 1 ? y : x + y) / 2 + 120 * std::exp(-r2 / 3000.0f) +
                  40 * std::sin(0.05f * (x + 2 * c) + 0.07f * y) +
                  25 * philox_uniform(key, i, y * s + x, c + 2, 0);
        px[(y * s + x) * 3 + c] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v)));
      }
  return encode_image(px.data(), s, s, 3, ".jpg", 90);
}

int main(int argc, char** argv) {
  const int images = argc > 1 ? std::atoi(argv[1]) : 512;
  const int all = argc > 2 ? std::atoi(argv[2]) : static_cast<int>(std::thread::hardware_concurrency());
  if (!have_image_codec()) {
    std::fprintf(stderr, "owt_loader_bench: this owt was built without OpenCV\n");
    return 1;
  }
  const fs::path root = fs::temp_directory_path() / ("owt_loader_bench_" + std::to_string(::getpid()));
  int64_t bytes = 0;
  for (int i = 0; i < images; ++i) {
    fs::path p = root / "train" / ("class_" + std::to_string(i % 10)) / ("img_" + std::to_string(i) + ".jpg");
    fs::create_directories(p.parent_path());
    std::string jpg = make_jpeg(i);
    bytes += static_cast<int64_t>(jpg.size());
    std::FILE* f = std::fopen(p.c_str(), "wb");
    std::fwrite(jpg.data(), 1, jpg.size(), f);
    std::fclose(f);
  }
  auto data = open_dataset("folder", root.string(), "train");
  TransformSpec spec;
  spec.resize = 256;
  spec.crop = 224;
  spec.random_crop = spec.flip = true;
  spec.lighting = 0.1f;
  spec.mean = {0.485f, 0.456f, 0.406f};
  spec.std = {0.229f, 0.224f, 0.225f};
  Transform tf(spec, data->example_shape(), 1);
  std::printf("owt_loader_bench: %d JPEGs 256x256 (mean %.1f KB) -> 224x224 crops, flip, "
              "lighting, normalise; batch 64; page cache warm\n",
              images, bytes / 1024.0 / images);
  for (int threads : {1, all}) {
    LoaderSpec ls;
    ls.batch = 64;
    ls.threads = threads;
    ls.prefetch = 2;
    BatchLoader loader(*data, tf, ls);
    std::vector<float> x(64 * 3 * 224 * 224);
    std::vector<int32_t> labels(64);
    loader.load(0, 0, x.data(), labels.data());  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    int64_t n = 0;
    for (int64_t epoch = 1; epoch <= 2; ++epoch)
      for (int64_t i = 0; i < loader.batches_per_epoch(); ++i, n += 64)
        loader.load(epoch, i, x.data(), labels.data());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("threads %2d: %8.1f images/s (%.1f per thread)\n", threads, n / s, n / s / threads);
  }
  fs::remove_all(root);
  return 0;
}
