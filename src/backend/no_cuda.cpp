// The CUDA entry points of owt/backend/cuda.h in a build without the CUDA backend
// (OWT_WITH_CUDA=OFF; CMake compiles this file instead of src/backend/cuda): no devices, and
// every request for one fails with a clear owt::Error.
#include "owt/backend/cuda.h"

#include "owt/core/error.h"

namespace owt {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(cat(what, ": this owt was built without the CUDA backend (rebuild with "
                  "-DOWT_WITH_CUDA=ON on a machine with the CUDA toolkit, cuDNN and NCCL)"));
}
}  // namespace

bool cuda_backend_built() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "this owt was built without the CUDA backend"; }
std::unique_ptr<Backend> make_cuda_backend(int, const std::string&) { no_cuda("--device cuda"); }
void* cuda_plugin_symbol(const char* name) { no_cuda(name); }
void* cuda_stream_of(Backend&) { no_cuda("cuda_stream_of"); }
int cuda_device_of(Backend&) { no_cuda("cuda_device_of"); }
void cuda_written_outside(Backend&, const void*, size_t) { no_cuda("cuda_written_outside"); }
CudaMemoryStats cuda_memory_stats(Backend&) { no_cuda("cuda_memory_stats"); }
void cuda_reset_peak_memory(Backend&) { no_cuda("cuda_reset_peak_memory"); }

}  // namespace owt
