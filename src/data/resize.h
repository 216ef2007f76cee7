// Image resampling for the data pipeline: a separable triangle filter widened by the scale
// factor when shrinking (antialiased bilinear, as PIL and torchvision resize).
#pragma once
#include <cstdint>
#include <vector>

namespace owt {

// out (C, OH, OW) from in (C, H, W); `tmp` is scratch of any size.
void resize_image(const float* in, int64_t c, int64_t h, int64_t w, float* out, int64_t oh,
                  int64_t ow, std::vector<float>& tmp);

// The size that makes the shorter side `shorter`, keeping the aspect ratio (rounded).
void shorter_side_size(int64_t h, int64_t w, int64_t shorter, int64_t& oh, int64_t& ow);

}  // namespace owt
