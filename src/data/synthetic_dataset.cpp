// SyntheticDataset: each example computed in read() from keyed Philox draws (the formula is in
// owt/data/synthetic_dataset.h); the object holds only the spec, so its size does not depend on
// the number of classes or examples.
#include "owt/data/synthetic_dataset.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "owt/core/philox.h"

namespace owt {
namespace {

// First counter word: which stream a draw belongs to.
enum Stream : uint32_t { kPrototype = 0, kNoise = 1, kShift = 2, kLabel = 3 };

// An integer uniform in [-s, s] from 32 random bits.
int64_t uniform_shift(uint32_t bits, int64_t s) {
  return static_cast<int64_t>((static_cast<uint64_t>(bits) * static_cast<uint64_t>(2 * s + 1)) >> 32) - s;
}

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(const SyntheticSpec& spec, uint32_t split, int64_t examples)
      : spec_(spec), split_(split), examples_(examples), key_(rng_key(spec.seed, Purpose::Synthetic)),
        grid_h_((spec.shape[1] - 1) / kSyntheticCell + 2),
        grid_w_((spec.shape[2] - 1) / kSyntheticCell + 2) {}

  int64_t size() const override { return examples_; }
  Shape example_shape() const override { return spec_.shape; }
  int classes() const override { return static_cast<int>(spec_.classes); }
  int32_t label(int64_t i) const override {
    if (spec_.frequency == ClassFrequency::Uniform) return static_cast<int32_t>(i % spec_.classes);
    // Zipf: u with 53 random bits, so even the rarest of 10^6 classes can be drawn.
    const Philox4 r = philox4x32(kLabel, static_cast<uint32_t>(i), 0, split_, key_.k0, key_.k1);
    const double u = static_cast<double>((static_cast<uint64_t>(r.v[0]) << 21) ^ (r.v[1] >> 11)) / 9007199254740992.0;
    const double k = std::floor(std::exp(u * std::log(static_cast<double>(spec_.classes) + 1))) - 1;
    return static_cast<int32_t>(std::clamp<double>(k, 0, static_cast<double>(spec_.classes - 1)));
  }
  std::string source(int64_t i) const override {
    return cat("synthetic ", split_ ? "test" : "train", " example ", i);
  }

  void read(int64_t i, float* out) const override {
    const int64_t C = spec_.shape[0], H = spec_.shape[1], W = spec_.shape[2];
    const uint32_t example = static_cast<uint32_t>(i);
    const std::vector<float> grid = prototype_grid(static_cast<uint32_t>(label(i)));  // (C, gh, gw)
    const Philox4 s = philox4x32(kShift, example, 0, split_, key_.k0, key_.k1);
    const int64_t dy = uniform_shift(s.v[0], spec_.shift), dx = uniform_shift(s.v[1], spec_.shift);
    float normals[4] = {0, 0, 0, 0};
    for (int64_t c = 0, e = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x, ++e) {
          if (e % 4 == 0) gaussians(static_cast<uint32_t>(e / 4), example, normals);
          const int64_t py = std::clamp<int64_t>(y - dy, 0, H - 1), px = std::clamp<int64_t>(x - dx, 0, W - 1);
          const float v = prototype_at(grid.data() + c * grid_h_ * grid_w_, py, px) +
                          spec_.noise * normals[e % 4];
          out[e] = std::min(1.f, std::max(0.f, v));
        }
  }

 private:
  // Class k's grid values, (C, grid_h, grid_w), uniform in [0, 1).
  std::vector<float> prototype_grid(uint32_t k) const {
    std::vector<float> g(static_cast<size_t>(spec_.shape[0] * grid_h_ * grid_w_));
    for (size_t j = 0; j < g.size(); ++j)
      g[j] = uniform01(philox4x32(kPrototype, k, static_cast<uint32_t>(j), 0, key_.k0, key_.k1).v[0]);
    return g;
  }

  // The prototype at pixel (y, x) of one channel: bilinear between the grid points around it.
  float prototype_at(const float* g, int64_t y, int64_t x) const {
    const int64_t gy = y / kSyntheticCell, gx = x / kSyntheticCell;
    const float ty = static_cast<float>(y % kSyntheticCell) / kSyntheticCell;
    const float tx = static_cast<float>(x % kSyntheticCell) / kSyntheticCell;
    const float* r0 = g + gy * grid_w_;
    const float* r1 = r0 + grid_w_;
    const float top = r0[gx] + tx * (r0[gx + 1] - r0[gx]);
    const float bottom = r1[gx] + tx * (r1[gx + 1] - r1[gx]);
    return top + ty * (bottom - top);
  }

  // Four N(0, 1) draws for pixels 4·quad .. 4·quad + 3 of `example` (Box-Muller, twice).
  void gaussians(uint32_t quad, uint32_t example, float* z) const {
    const Philox4 r = philox4x32(kNoise, example, quad, split_, key_.k0, key_.k1);
    for (int h = 0; h < 2; ++h) {
      const float u1 = 1.f - uniform01(r.v[2 * h]), u2 = uniform01(r.v[2 * h + 1]);  // u1 in (0, 1]
      const float radius = std::sqrt(-2.f * std::log(u1)), angle = 6.2831853f * u2;
      z[2 * h] = radius * std::cos(angle);
      z[2 * h + 1] = radius * std::sin(angle);
    }
  }

  SyntheticSpec spec_;
  uint32_t split_;  // 0: train, 1: test (a counter word of every per-example draw)
  int64_t examples_;
  RngKey key_;
  int64_t grid_h_, grid_w_;  // prototype grid points along H and W
};

}  // namespace

std::unique_ptr<Dataset> open_synthetic_dataset(const SyntheticSpec& spec, const std::string& split) {
  if (split != "train" && split != "test")
    throw Error(cat("synthetic data set: split '", split, "' (expected train or test)"));
  if (spec.shape.rank() != 3 || spec.shape[0] <= 0 || spec.shape[1] <= 0 || spec.shape[2] <= 0)
    throw Error(cat("synthetic data set: example shape ", spec.shape.str(), " is not (C, H, W)"));
  // Counter words are 32 bits: element, grid point and example indices must fit.
  if (spec.shape.numel() > limits::kInputElements)
    throw Error(cat("synthetic data set: examples of ", spec.shape.str(), " are larger than ",
                    limits::kInputElements, " elements"));
  if (spec.classes < 1 || spec.classes > (int64_t{1} << 31) - 1)
    throw Error(cat("synthetic data set: ", spec.classes, " classes"));
  const int64_t examples = split == "train" ? spec.train_examples : spec.test_examples;
  if (examples < 0 || examples > (int64_t{1} << 32) - 1)
    throw Error(cat("synthetic data set: ", examples, " ", split, " examples"));
  if (!(spec.noise >= 0) || !std::isfinite(spec.noise))
    throw Error(cat("synthetic data set: noise ", spec.noise, " (expected a finite value ≥ 0)"));
  if (spec.shift < 0 || spec.shift > limits::kImageSide)
    throw Error(cat("synthetic data set: shift ", spec.shift, " (expected 0 to ", limits::kImageSide, ")"));
  return std::make_unique<SyntheticDataset>(spec, split == "train" ? 0u : 1u, examples);
}

}  // namespace owt
