// Transform: zero-pad, crop (random in training, centred otherwise), horizontal flip and
// per-channel normalisation of one example. Random draws come only from Philox keyed by
// (seed, Augment) at counter (epoch, example, draw, 0), so they never depend on the worker.
#include "owt/data/transform.h"

#include <algorithm>

#include "owt/core/error.h"

namespace owt {
namespace {

enum Draw : uint32_t { kDrawY = 0, kDrawX = 1, kDrawFlip = 2 };

// Per-channel values: empty -> `fallback`, one value -> broadcast, C values -> as given.
std::vector<float> per_channel(const std::vector<float>& v, int64_t channels, float fallback,
                               const char* field) {
  if (v.empty()) return std::vector<float>(channels, fallback);
  if (v.size() == 1) return std::vector<float>(channels, v[0]);
  if (static_cast<int64_t>(v.size()) == channels) return v;
  throw Error(cat(field, ": ", v.size(), " values given for ", channels,
                  " input channels; expected 1 or ", channels));
}

// Uniform integer in [0, n) from one draw.
int64_t draw_int(RngKey key, int64_t epoch, int64_t example, uint32_t draw, int64_t n) {
  float u = philox_uniform(key, static_cast<uint32_t>(epoch), static_cast<uint32_t>(example), draw, 0);
  return std::min(static_cast<int64_t>(u * n), n - 1);
}

}  // namespace

Transform::Transform(TransformSpec spec, Shape in, uint64_t seed)
    : spec_(std::move(spec)), in_(std::move(in)), key_(rng_key(seed, Purpose::Augment)) {
  if (in_.rank() != 3 || in_.numel() <= 0)
    throw Error(cat("augment: input shape ", in_.str(), " is not (C, H, W)"));
  const int64_t c = in_[0], h = in_[1], w = in_[2];
  if (spec_.pad < 0) throw Error(cat("augment.pad: ", spec_.pad, " is negative; expected >= 0"));
  if (spec_.crop < 0) throw Error(cat("augment.crop: ", spec_.crop, " is negative; expected >= 0"));
  if (spec_.crop > h + 2 * spec_.pad || spec_.crop > w + 2 * spec_.pad)
    throw Error(cat("augment.crop: ", spec_.crop, " is larger than the padded input ",
                    h + 2 * spec_.pad, "x", w + 2 * spec_.pad, " (input ", h, "x", w, ", pad ",
                    spec_.pad, ")"));
  spec_.mean = per_channel(spec_.mean, c, 0.0f, "augment.mean");
  spec_.std = per_channel(spec_.std, c, 1.0f, "augment.std");
  for (size_t i = 0; i < spec_.std.size(); ++i)
    if (!(spec_.std[i] > 0.0f))
      throw Error(cat("augment.std: value ", spec_.std[i], " for channel ", i, " must be > 0"));
}

Shape Transform::output_shape() const {
  return Shape{in_[0], spec_.crop ? spec_.crop : in_[1], spec_.crop ? spec_.crop : in_[2]};
}

void Transform::apply(const float* in, float* out, int64_t epoch, int64_t example,
                      bool train) const {
  const int64_t c = in_[0], h = in_[1], w = in_[2], pad = spec_.pad;
  const Shape o = output_shape();
  const int64_t oh = o[1], ow = o[2];
  const int64_t room_y = h + 2 * pad - oh, room_x = w + 2 * pad - ow;  // >= 0 by construction
  // Crop window origin in padded coordinates.
  int64_t y0 = room_y / 2, x0 = room_x / 2;
  bool flip = false;
  if (train && spec_.random_crop) {
    y0 = draw_int(key_, epoch, example, kDrawY, room_y + 1);
    x0 = draw_int(key_, epoch, example, kDrawX, room_x + 1);
  }
  if (train && spec_.flip)
    flip = philox_uniform(key_, static_cast<uint32_t>(epoch), static_cast<uint32_t>(example),
                          kDrawFlip, 0) < 0.5f;
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mean = spec_.mean[ch], sd = spec_.std[ch];
    const float* src = in + ch * h * w;
    float* dst = out + ch * oh * ow;
    for (int64_t y = 0; y < oh; ++y) {
      const int64_t sy = y0 + y - pad;  // row in the unpadded input
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t sx = x0 + (flip ? ow - 1 - x : x) - pad;
        // Padding is zero in pixel space, i.e. before normalisation (as torchvision does).
        const float v = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[sy * w + sx] : 0.0f;
        dst[y * ow + x] = (v - mean) / sd;
      }
    }
  }
}

}  // namespace owt
