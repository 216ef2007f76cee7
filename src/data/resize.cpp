// Separable antialiased bilinear resampling: per output coordinate, a normalised triangle
// filter of radius max(1, scale) input pixels, first along rows then along columns.
#include "resize.h"

#include <algorithm>
#include <cmath>

namespace owt {
namespace {

// Weights of every output coordinate along one axis: first input index and its taps.
struct Taps {
  std::vector<int64_t> first, count;
  std::vector<float> weights;  // (out, max_taps)
  int64_t max_taps = 0;
};

Taps make_taps(int64_t in, int64_t out) {
  Taps t;
  const double scale = static_cast<double>(in) / out, support = std::max(1.0, scale);
  t.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(out);
  t.count.resize(out);
  t.weights.assign(static_cast<size_t>(out * t.max_taps), 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    const double centre = (o + 0.5) * scale;
    int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(centre - support)));
    int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(std::ceil(centre + support)));
    hi = std::min(hi, lo + t.max_taps);
    double sum = 0;
    float* w = t.weights.data() + o * t.max_taps;
    for (int64_t i = lo; i < hi; ++i) {
      double x = std::abs((i + 0.5 - centre) / support);
      double v = x < 1 ? 1 - x : 0;
      w[i - lo] = static_cast<float>(v);
      sum += v;
    }
    if (sum <= 0) {  // cannot happen for in, out >= 1; keep the nearest pixel regardless
      lo = std::min<int64_t>(in - 1, static_cast<int64_t>(centre));
      hi = lo + 1;
      w[0] = 1.0f;
      sum = 1;
    }
    for (int64_t i = 0; i < hi - lo; ++i) w[i] = static_cast<float>(w[i] / sum);
    t.first[o] = lo;
    t.count[o] = hi - lo;
  }
  return t;
}

}  // namespace

void shorter_side_size(int64_t h, int64_t w, int64_t shorter, int64_t& oh, int64_t& ow) {
  if (h <= w) {
    oh = shorter;
    ow = std::max<int64_t>(1, std::llround(static_cast<double>(w) * shorter / h));
  } else {
    ow = shorter;
    oh = std::max<int64_t>(1, std::llround(static_cast<double>(h) * shorter / w));
  }
}

void resize_image(const float* in, int64_t c, int64_t h, int64_t w, float* out, int64_t oh,
                  int64_t ow, std::vector<float>& tmp) {
  const Taps tx = make_taps(w, ow), ty = make_taps(h, oh);
  tmp.resize(static_cast<size_t>(c * h * ow));  // (C, H, OW)
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y) {
      const float* src = in + (ch * h + y) * w;
      float* dst = tmp.data() + (ch * h + y) * ow;
      for (int64_t x = 0; x < ow; ++x) {
        const float* wt = tx.weights.data() + x * tx.max_taps;
        const float* s = src + tx.first[x];
        float acc = 0;
        for (int64_t k = 0; k < tx.count[x]; ++k) acc += wt[k] * s[k];
        dst[x] = acc;
      }
    }
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < oh; ++y) {
      float* dst = out + (ch * oh + y) * ow;
      std::fill(dst, dst + ow, 0.0f);
      const float* wt = ty.weights.data() + y * ty.max_taps;
      for (int64_t k = 0; k < ty.count[y]; ++k) {
        const float* src = tmp.data() + (ch * h + ty.first[y] + k) * ow;
        const float wk = wt[k];
        for (int64_t x = 0; x < ow; ++x) dst[x] += wk * src[x];
      }
    }
}

}  // namespace owt
