// Transform: resize (shorter side), zero-pad, crop (random in training, centred or one of ten
// views otherwise), horizontal flip, PCA lighting and per-channel normalisation of one example.
// Random draws come only from Philox keyed by (seed, Augment) at counter (epoch, example, draw).
#include "owt/data/transform.h"

#include <algorithm>
#include <cmath>

#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "resize.h"

namespace owt {
namespace {

enum Draw : uint32_t { kDrawY = 0, kDrawX = 1, kDrawFlip = 2, kDrawLight = 3 };

// AlexNet's PCA of ImageNet RGB pixels in [0, 1] (as fb.resnet.torch and torchvision ports).
constexpr float kEigval[3] = {0.2175f, 0.0188f, 0.0045f};
constexpr float kEigvec[3][3] = {{-0.5675f, 0.7192f, 0.4009f},
                                 {-0.5808f, -0.0045f, -0.8140f},
                                 {-0.5836f, -0.6948f, 0.4203f}};

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

// Three standard normals (Box-Muller on one Philox block).
void draw_normals(RngKey key, int64_t epoch, int64_t example, float z[3]) {
  Philox4 r = philox4x32(static_cast<uint32_t>(epoch), static_cast<uint32_t>(example), kDrawLight,
                         0, key.k0, key.k1);
  const float two_pi = 6.283185307f;
  for (int k = 0; k < 2; ++k) {
    float u1 = 1.0f - uniform01(r.v[2 * k]);  // (0, 1]
    float u2 = uniform01(r.v[2 * k + 1]);
    float m = std::sqrt(-2.0f * std::log(u1));
    z[2 * k] = m * std::cos(two_pi * u2);
    if (2 * k + 1 < 3) z[2 * k + 1] = m * std::sin(two_pi * u2);
  }
}

}  // namespace

Transform::Transform(TransformSpec spec, Shape in, uint64_t seed)
    : spec_(std::move(spec)), in_(std::move(in)), key_(rng_key(seed, Purpose::Augment)) {
  if (in_.rank() != 3 || in_[0] <= 0 || in_[1] < 0 || in_[2] < 0 || (in_[1] == 0) != (in_[2] == 0))
    throw Error(cat("augment: input shape ", in_.str(), " is not (C, H, W)"));
  const int64_t c = in_[0];
  if (spec_.pad < 0) throw Error(cat("augment.pad: ", spec_.pad, " is negative; expected >= 0"));
  if (spec_.crop < 0) throw Error(cat("augment.crop: ", spec_.crop, " is negative; expected >= 0"));
  if (spec_.resize < 0)
    throw Error(cat("augment.resize: ", spec_.resize, " is negative; expected >= 0"));
  if (spec_.test_views != 1 && spec_.test_views != 10)
    throw Error(cat("augment.test_views: ", spec_.test_views, "; expected 1 or 10"));
  if (spec_.lighting < 0)
    throw Error(cat("augment.lighting: ", spec_.lighting, " is negative; expected >= 0"));
  if (spec_.lighting > 0 && c != 3)
    throw Error(cat("augment.lighting: PCA lighting needs RGB images; the input has ", c,
                    " channels"));
  if (in_[1] == 0 && spec_.crop == 0)
    throw Error("augment.crop: the images have different sizes, so a crop size is needed "
                "(e.g. augment: {resize: 256, crop: 224})");
  if (in_[1] > 0) {
    int64_t h = in_[1], w = in_[2];
    if (spec_.resize > 0) shorter_side_size(in_[1], in_[2], spec_.resize, h, w);
    if (spec_.crop > h + 2 * spec_.pad || spec_.crop > w + 2 * spec_.pad)
      throw Error(cat("augment.crop: ", spec_.crop, " is larger than the padded input ",
                      h + 2 * spec_.pad, "x", w + 2 * spec_.pad, " (input ", h, "x", w, ", pad ",
                      spec_.pad, ")"));
  }
  spec_.mean = per_channel(spec_.mean, c, 0.0f, "augment.mean");
  spec_.std = per_channel(spec_.std, c, 1.0f, "augment.std");
  for (size_t i = 0; i < spec_.std.size(); ++i)
    if (!(spec_.std[i] > 0.0f))
      throw Error(cat("augment.std: value ", spec_.std[i], " for channel ", i, " must be > 0"));
}

Shape Transform::output_shape() const {
  if (spec_.crop) return Shape{in_[0], spec_.crop, spec_.crop};
  int64_t h = in_[1], w = in_[2];
  if (spec_.resize > 0) shorter_side_size(in_[1], in_[2], spec_.resize, h, w);
  return Shape{in_[0], h, w};
}

const float* Transform::resized(const Image& in, int64_t& h, int64_t& w,
                                std::vector<float>& scratch) const {
  OWT_CHECK(in.c == in_[0], "image has ", in.c, " channels, expected ", in_[0]);
  h = in.h;
  w = in.w;
  if (spec_.resize <= 0) return in.pixels.data();
  int64_t rh, rw;
  shorter_side_size(in.h, in.w, spec_.resize, rh, rw);
  if (rh == in.h && rw == in.w) return in.pixels.data();
  // An image of extreme aspect ratio (1 x 30000, say) would grow to billions of pixels.
  // (Both sides are below 2^31 for images within limits::kImageSide, so the product is exact.)
  if (rh * rw > limits::kImagePixels)
    throw BadExample(cat("image ", in.h, "x", in.w, " resized to a shorter side of ", spec_.resize,
                         " would be ", rh, "x", rw, ", more than the ", limits::kImagePixels,
                         " pixels owt resizes an image to"));
  // scratch = [resized (C, RH, RW) | row-pass temporary]
  std::vector<float> tmp;
  scratch.resize(static_cast<size_t>(in.c * rh * rw));
  resize_image(in.pixels.data(), in.c, in.h, in.w, scratch.data(), rh, rw, tmp);
  h = rh;
  w = rw;
  return scratch.data();
}

void Transform::emit(const float* src_all, int64_t h, int64_t w, Window win, const float* light,
                     float* out) const {
  const int64_t c = in_[0], pad = spec_.pad;
  const int64_t oh = spec_.crop ? spec_.crop : h, ow = spec_.crop ? spec_.crop : w;
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mean = spec_.mean[ch], inv_sd = 1.0f / spec_.std[ch];
    const float shift = light ? light[ch] : 0.0f;
    const float* src = src_all + ch * h * w;
    float* dst = out + ch * oh * ow;
    for (int64_t y = 0; y < oh; ++y) {
      const int64_t sy = win.y0 + y - pad;  // row in the unpadded input
      const bool row_in = sy >= 0 && sy < h;
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t sx = win.x0 + (win.flip ? ow - 1 - x : x) - pad;
        // Padding is zero in pixel space, i.e. before normalisation (as torchvision does).
        const float v = (row_in && sx >= 0 && sx < w) ? src[sy * w + sx] : 0.0f;
        dst[y * ow + x] = (v + shift - mean) * inv_sd;
      }
    }
  }
}

void Transform::apply(const float* in, float* out, int64_t epoch, int64_t example,
                      bool train) const {
  OWT_CHECK(in_[1] > 0, "apply(float*) needs a fixed input size");
  Image img;
  img.c = in_[0];
  img.h = in_[1];
  img.w = in_[2];
  img.pixels.assign(in, in + in_.numel());
  std::vector<float> scratch;
  apply(img, out, epoch, example, train, scratch);
}

void Transform::apply(const Image& in, float* out, int64_t epoch, int64_t example, bool train,
                      std::vector<float>& scratch) const {
  int64_t h, w;
  const float* src = resized(in, h, w, scratch);
  const int64_t oh = spec_.crop ? spec_.crop : h, ow = spec_.crop ? spec_.crop : w;
  const int64_t room_y = h + 2 * spec_.pad - oh, room_x = w + 2 * spec_.pad - ow;
  if (room_y < 0 || room_x < 0)
    throw BadExample(cat("image ", h, "x", w, " is smaller than the crop ", oh, "x", ow,
                         " (set augment.resize to scale images first)"));
  Window win{room_y / 2, room_x / 2, false};
  if (train && spec_.random_crop) {
    win.y0 = draw_int(key_, epoch, example, kDrawY, room_y + 1);
    win.x0 = draw_int(key_, epoch, example, kDrawX, room_x + 1);
  }
  if (train && spec_.flip)
    win.flip = philox_uniform(key_, static_cast<uint32_t>(epoch), static_cast<uint32_t>(example),
                              kDrawFlip, 0) < 0.5f;
  float light[3];
  const bool lit = train && spec_.lighting > 0;
  if (lit) {
    float z[3];
    draw_normals(key_, epoch, example, z);
    for (int ch = 0; ch < 3; ++ch) {
      light[ch] = 0;
      for (int k = 0; k < 3; ++k) light[ch] += kEigvec[ch][k] * spec_.lighting * z[k] * kEigval[k];
    }
  }
  emit(src, h, w, win, lit ? light : nullptr, out);
}

void Transform::apply_view(const Image& in, float* out, int view,
                           std::vector<float>& scratch) const {
  OWT_CHECK(view >= 0 && view < 10, "view ", view);
  int64_t h, w;
  const float* src = resized(in, h, w, scratch);
  const int64_t oh = spec_.crop ? spec_.crop : h, ow = spec_.crop ? spec_.crop : w;
  const int64_t room_y = h + 2 * spec_.pad - oh, room_x = w + 2 * spec_.pad - ow;
  if (room_y < 0 || room_x < 0)
    throw BadExample(cat("image ", h, "x", w, " is smaller than the crop ", oh, "x", ow));
  const int corner = view % 5;
  Window win{room_y / 2, room_x / 2, view >= 5};
  if (corner < 4) {
    win.y0 = corner < 2 ? 0 : room_y;
    win.x0 = corner % 2 == 0 ? 0 : room_x;
  }
  emit(src, h, w, win, nullptr, out);
}

}  // namespace owt
