// The CUDA backend's public face: device count, the factory, and the few CUDA-only queries
// (stream, memory) that comm/nccl and `owt bench` need. No CUDA headers here: CPU code
// includes this file. In a build with CUDA the backend lives in the plugin libowt_cuda.so,
// which src/backend/cuda_loader.cpp loads (dlopen) the first time a CUDA backend is made, so a
// run that never uses a GPU maps none of cudart, cuBLAS, cuDNN and NCCL; a build without CUDA
// links src/backend/no_cuda.cpp instead.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "owt/backend/backend.h"

namespace owt {

// True when this owt was built with the CUDA backend (OWT_WITH_CUDA).
bool cuda_backend_built();

// Number of visible CUDA devices; 0 without a driver, without a device, or in a build
// without the CUDA backend. Asks the driver (libcuda.so.1, opened with dlopen): loads no CUDA
// library of its own. Never throws.
int cuda_device_count();

// Why cuda_device_count() is 0, in words ("no CUDA driver (libcuda.so.1: cannot open ...)",
// "cuInit failed: ..."); empty when a device is visible.
std::string cuda_unavailable_reason();

// The CUDA backend on `device` (0-based). `precision` is the model file's key:
//   tf32         fp32 tensors; cuDNN and cuBLAS may use TF32 tensor cores (PyTorch's default
//                for convolutions)
//   fp32-strict  fp32 tensors and fp32 FMA maths throughout (no TF32)
//   bf16         fp32 tensors, master weights and optimizer state; convolutions and GEMMs
//                compute on bf16 copies of their inputs with fp32 accumulation
// Throws owt::Error in a build without CUDA, when the plugin cannot be loaded (the message
// names the file and the missing library), for a bad device index or an unknown precision.
std::unique_ptr<Backend> make_cuda_backend(int device, const std::string& precision);

// The address of the exported symbol `name` of the CUDA plugin, loading the plugin on first
// use (make_communicator.cpp finds the NCCL communicator this way). Throws owt::Error when the
// plugin cannot be loaded, lacks the symbol, or in a build without CUDA.
void* cuda_plugin_symbol(const char* name);

// The stream every op of a CUDA backend is queued on, as a cudaStream_t cast to void*.
// Throws owt::Error when `backend` is not a CUDA backend.
void* cuda_stream_of(Backend& backend);
// The device index of a CUDA backend (throws likewise).
int cuda_device_of(Backend& backend);
// Tells a CUDA backend that [p, p + bytes) of its device memory is written by work it did not
// queue itself (the NCCL communicator's collectives), so that it drops what it keeps derived
// from that memory (the convolutions' bf16 operand copies). Throws likewise.
void cuda_written_outside(Backend& backend, const void* p, size_t bytes);

// Device memory of a CUDA backend's caching allocator, in bytes: `in_use` is held by live
// buffers (what torch.cuda.memory_allocated reports), `reserved` is obtained from the driver
// (in use plus cached free blocks); peaks since creation or the last reset.
struct CudaMemoryStats {
  size_t in_use = 0, peak_in_use = 0, reserved = 0, peak_reserved = 0;
};
CudaMemoryStats cuda_memory_stats(Backend& backend);
void cuda_reset_peak_memory(Backend& backend);

}  // namespace owt
