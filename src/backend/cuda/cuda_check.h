// Checked CUDA, cuDNN and cuBLAS calls: on failure throw owt::Error naming the call, the file,
// the line and the library's own error string (docs/ARCHITECTURE.md, "Conventions"). Internal to src/backend/cuda;
// comm/nccl has its own NCCL check beside it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "owt/core/error.h"

namespace owt::cuda_detail {

[[noreturn]] inline void throw_call_error(const char* lib, const char* call, const char* file,
                                          int line, const char* text) {
  throw Error(cat(lib, " error in ", call, " at ", file, ":", line, ": ", text));
}

}  // namespace owt::cuda_detail

#define OWT_CUDA_CHECK(call)                                                              \
  do {                                                                                    \
    cudaError_t owt_rc_ = (call);                                                         \
    if (owt_rc_ != cudaSuccess)                                                           \
      ::owt::cuda_detail::throw_call_error("CUDA", #call, __FILE__, __LINE__,             \
                                           cudaGetErrorString(owt_rc_));                  \
  } while (0)

#define OWT_CUDNN_CHECK(call)                                                             \
  do {                                                                                    \
    cudnnStatus_t owt_rc_ = (call);                                                       \
    if (owt_rc_ != CUDNN_STATUS_SUCCESS)                                                  \
      ::owt::cuda_detail::throw_call_error("cuDNN", #call, __FILE__, __LINE__,            \
                                           cudnnGetErrorString(owt_rc_));                 \
  } while (0)

#define OWT_CUBLAS_CHECK(call)                                                            \
  do {                                                                                    \
    cublasStatus_t owt_rc_ = (call);                                                      \
    if (owt_rc_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::owt::cuda_detail::throw_call_error("cuBLAS", #call, __FILE__, __LINE__,           \
                                           cublasGetStatusString(owt_rc_)); \
  } while (0)

// After a kernel launch: a bad configuration shows up here, not at the next sync.
#define OWT_CUDA_CHECK_LAUNCH(kernel)                                                     \
  do {                                                                                    \
    cudaError_t owt_rc_ = cudaGetLastError();                                             \
    if (owt_rc_ != cudaSuccess)                                                           \
      ::owt::cuda_detail::throw_call_error("CUDA", "launch of " #kernel, __FILE__,        \
                                           __LINE__, cudaGetErrorString(owt_rc_));        \
  } while (0)
