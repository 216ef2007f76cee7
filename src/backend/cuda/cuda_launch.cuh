// Launch helpers shared by the backend's .cu files: grid sizes for grid-stride loops.
// Internal to src/backend/cuda.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

namespace owt::cuda_detail {

constexpr int kThreads = 256;
// Enough blocks to cover n with kThreads each, capped (kernels loop over the rest).
inline unsigned grid_for(size_t n) {
  size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::max<size_t>(1, std::min<size_t>(blocks, size_t{1} << 20)));
}

}  // namespace owt::cuda_detail

// for (size_t i = this thread's first; i < n; i += every thread of the grid)
#define OWT_GRID_LOOP(i, n)                                                         \
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
