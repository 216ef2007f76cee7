// Transform: per-example normalisation and augmentation applied when a batch is assembled.
// Every random choice is keyed by (seed, epoch, global example index) — DESIGN §5.
#pragma once
#include <cstdint>
#include <vector>

#include "owt/core/philox.h"
#include "owt/core/shape.h"

namespace owt {

struct TransformSpec {
  std::vector<float> mean;   // per channel (empty: 0)
  std::vector<float> std;    // per channel (empty: 1)
  int crop = 0;              // output H = W = crop (0: keep the input size)
  int pad = 0;               // zero padding before a random crop
  bool random_crop = false;  // training: random crop offset (else centre crop)
  bool flip = false;         // training: horizontal flip with probability 1/2
};

class Transform {
 public:
  Transform(TransformSpec spec, Shape in, uint64_t seed);
  Shape output_shape() const;  // (C, crop or H, crop or W)
  // out (C, OH, OW) from in (C, H, W); `train` enables the random parts.
  void apply(const float* in, float* out, int64_t epoch, int64_t example, bool train) const;

 private:
  TransformSpec spec_;
  Shape in_;
  RngKey key_;
};

}  // namespace owt
