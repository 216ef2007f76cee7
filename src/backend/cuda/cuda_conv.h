// CudaConv: CudaBackend's convolutions on cuDNN. One Plan per geometry (descriptors and the
// fastest algorithm of each op, found once with cudnnFind*AlgorithmEx and cached with its
// workspace size); fp32 tensors in tf32 / fp32-strict, bf16 copies in bf16. Internal header.
#pragma once
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>

#include "owt/backend/backend.h"

namespace owt {

class CudaBackend;

// Shapes: x, dx (N, C, H, W); w, dw (K, C, KH, KW); bias, db (K); y, dy (N, K, OH, OW).
// backward_filter accumulates: dw += ..., db += ... (db may be null); the others overwrite.
class CudaConv {
 public:
  explicit CudaConv(CudaBackend& backend);
  ~CudaConv();
  void forward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
  void backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx);
  void backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db);

 private:
  struct Plan;
  // The operands and cuDNN calls of each op, for run() (cuda_conv.cpp).
  struct Forward;
  struct BackwardData;
  struct BackwardFilter;
  using Key = std::array<int, 13>;
  Plan& plan(const ConvGeom& g);
  // Op from inputs a, b to out: bf16 copies when the precision asks, the algorithm found once
  // per plan, the launch. Returns where the result is (out, or its bf16 scratch copy).
  template <typename Op>
  void* run(const ConvGeom& g, const float* a, const float* b, float* out);
  void* workspace(size_t bytes);             // grow-only, stream-ordered reuse
  void* scratch(int slot, size_t bytes);     // grow-only bf16 copies, three slots
  size_t find_limit() const;                 // workspace offered to cudnnFind*

  CudaBackend& backend_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  std::shared_ptr<Buffer> workspace_;
  std::shared_ptr<Buffer> scratch_[3];
};

}  // namespace owt
