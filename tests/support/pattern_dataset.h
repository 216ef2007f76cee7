// PatternDataset: a synthetic Dataset of (3, 6, 6) images filled from the example index (every
// pixel identifies its example), labels i % 5, optionally slow to read (a slow disk), and the
// random augmentation the loader tests run it through; a batch copied out of a loader.
#pragma once
#include <chrono>
#include <thread>

#include <vector>

#include "owt/data/dataset.h"
#include "owt/data/loader.h"
#include "owt/data/transform.h"

namespace owt::test {

class PatternDataset : public Dataset {
 public:
  explicit PatternDataset(int64_t n, int delay_us = 0) : n_(n), delay_us_(delay_us) {}
  int64_t size() const override { return n_; }
  Shape example_shape() const override { return Shape{3, 6, 6}; }
  int classes() const override { return 5; }
  int32_t label(int64_t i) const override { return static_cast<int32_t>(i % 5); }
  void read(int64_t i, float* out) const override {
    if (delay_us_) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));
    for (int k = 0; k < 108; ++k) out[k] = static_cast<float>((i * 131 + k * 7) % 256) / 255.0f;
  }

 private:
  int64_t n_;
  int delay_us_;
};

// Random 4x4 crops of the 1-padded image, flips, lighting noise, normalisation: every random
// draw of the loader's keyed streams is exercised.
inline TransformSpec pattern_augment() {
  TransformSpec t;
  t.crop = 4;
  t.pad = 1;
  t.random_crop = true;
  t.flip = true;
  t.lighting = 0.1f;
  t.mean = {0.5f};
  t.std = {0.25f};
  return t;
}

// This worker's share of one batch, copied out with BatchLoader::load: x (rows, C, H, W).
struct CopiedBatch {
  std::vector<float> x;
  std::vector<int32_t> labels;
  bool operator==(const CopiedBatch& o) const { return x == o.x && labels == o.labels; }
};

inline CopiedBatch load_copy(BatchLoader& l, int64_t epoch, int64_t index, int64_t numel) {
  CopiedBatch b;
  b.x.resize(l.local_rows(index) * numel);
  b.labels.resize(l.local_rows(index));
  l.load(epoch, index, b.x.data(), b.labels.data());
  return b;
}

}  // namespace owt::test
