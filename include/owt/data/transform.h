// Transform: per-example resize, crop, flip, lighting noise and normalisation, applied when a
// batch is assembled. Every random choice is keyed by (seed, epoch, global example) — docs/ARCHITECTURE.md, "Randomness".
#pragma once
#include <cstdint>
#include <vector>

#include "owt/core/philox.h"
#include "owt/core/shape.h"
#include "owt/data/dataset.h"

namespace owt {

struct TransformSpec {
  std::vector<float> mean;   // per channel (empty: 0)
  std::vector<float> std;    // per channel (empty: 1)
  int resize = 0;            // first scale so the shorter side is this long (0: as stored)
  int crop = 0;              // output H = W = crop (0: keep the input size)
  int pad = 0;               // zero padding before a random crop
  bool random_crop = false;  // training: random crop offset (else centre crop)
  bool flip = false;         // training: horizontal flip with probability 1/2
  float lighting = 0;        // training: AlexNet PCA lighting, std of the coefficients (RGB only)
  int test_views = 1;        // evaluation views: 1 (centre crop) or 10 (corners + centre, flipped)
};

class Transform {
 public:
  // `in` is the data set's example_shape(); H = W = 0 (sizes vary) needs a crop.
  Transform(TransformSpec spec, Shape in, uint64_t seed);
  Shape output_shape() const;  // (C, crop or H, crop or W)
  const TransformSpec& spec() const { return spec_; }
  // out (C, OH, OW) from in (C, H, W) of the input shape; `train` enables the random parts.
  void apply(const float* in, float* out, int64_t epoch, int64_t example, bool train) const;
  // The same for an image of any size; `scratch` holds the resized image between calls.
  // Throws BadExample when the image is too small for the crop.
  void apply(const Image& in, float* out, int64_t epoch, int64_t example, bool train,
             std::vector<float>& scratch) const;
  // Evaluation view v in [0, 10): crop v % 5 (top-left, top-right, bottom-left, bottom-right,
  // centre), mirrored when v >= 5. View 4 is apply(..., train = false).
  void apply_view(const Image& in, float* out, int view, std::vector<float>& scratch) const;

 private:
  struct Window {
    int64_t y0 = 0, x0 = 0;  // origin in padded coordinates
    bool flip = false;
  };
  void emit(const float* src, int64_t h, int64_t w, Window win, const float* light,
            float* out) const;
  const float* resized(const Image& in, int64_t& h, int64_t& w, std::vector<float>& scratch) const;

  TransformSpec spec_;
  Shape in_;
  RngKey key_;
};

}  // namespace owt
