// CudaConv: CudaBackend's convolutions on cuDNN. One Plan per geometry (descriptors and the
// fastest algorithm of each op, found once with cudnnFind*AlgorithmEx and cached with its
// workspace size); fp32 tensors in tf32 / fp32-strict, bf16 copies in bf16 (kept while their
// source is unchanged, so a step converts each input and weight once). Internal header.
#pragma once
#include <cudnn.h>

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

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

  // Drops the bf16 copies of any memory overlapping [p, p + bytes): CudaBackend calls this for
  // every range its ops write and the allocator for every block handed back. Any thread.
  void forget(const void* p, size_t bytes);

 private:
  struct Plan;
  // The operands and cuDNN calls of each op, for run() (cuda_conv.cpp).
  struct Forward;
  struct BackwardData;
  struct BackwardFilter;
  using Key = std::array<int, 13>;
  // Where run() left an op's result: `out` itself (fp32 plans), or a bf16 scratch copy that
  // the caller converts or adds into out (bf16 plans).
  struct Result {
    void* bf16 = nullptr;
  };
  Plan& plan(const ConvGeom& g);
  // Op from inputs a, b to out: bf16 copies when the plan computes in bf16, aligned staging
  // when an fp32 operand is not 256-byte aligned, the algorithm found once per plan (a bf16
  // plan with no bf16 engine falls back to TF32 for good), the launch.
  template <typename Op>
  Result run(const ConvGeom& g, const float* a, const float* b, float* out);
  // A bf16 copy of src (count floats): the cached one while src is unchanged, else made now.
  const void* bf16_copy(const float* src, size_t count);
  void* workspace(size_t bytes);             // grow-only, stream-ordered reuse
  void* scratch(int slot, size_t bytes);     // grow-only, stream-ordered reuse
  size_t find_limit() const;                 // workspace offered to cudnnFind*

  // A cached bf16 copy of the float range [src, src + count).
  struct Bf16Copy {
    const float* src;
    size_t count;
    std::shared_ptr<Buffer> copy;
  };
  static constexpr size_t kMaxCopies = 64;   // oldest dropped beyond this

  CudaBackend& backend_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  std::shared_ptr<Buffer> workspace_;
  std::shared_ptr<Buffer> scratch_[4];       // a, b, out (aligned or bf16 staging), db parts
  std::mutex copies_mu_;
  std::vector<Bf16Copy> copies_;             // oldest first
};

}  // namespace owt
