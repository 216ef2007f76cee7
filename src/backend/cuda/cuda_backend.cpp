// CudaBackend: construction (stream, cuBLAS and cuDNN handles, precision), memory and copies
// through the caching allocator, pinned staging and pinned host buffers, GEMM on cuBLAS, and the
// public factory functions of owt/backend/cuda.h. Kernels live in the .cu files, convolution in
// cuda_conv.cpp.
#include "cuda_backend.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "../cuda_plugin.h"
#include "cuda_check.h"
#include "cuda_conv.h"
#include "owt/backend/cuda.h"

namespace owt {

namespace {
// Above this, from_host copies straight from pageable memory instead of growing the pinned
// buffer (a checkpoint load is rare; pinning hundreds of MB costs more than it saves).
constexpr size_t kMaxStaged = 256u << 20;
// From this size on, the copy into pinned memory runs on the OpenMP threads (an AlexNet b128
// batch is 77 MB: one core copies it in about 10 ms, the step's own time on an H200).
constexpr size_t kParallelCopy = 8u << 20;

void host_copy(void* dst, const void* src, size_t bytes) {
  if (bytes < kParallelCopy || omp_get_max_threads() == 1) {
    std::memcpy(dst, src, bytes);
    return;
  }
  constexpr size_t kChunk = 1u << 20;
  const int64_t chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < chunks; ++i) {
    const size_t off = static_cast<size_t>(i) * kChunk;
    std::memcpy(static_cast<char*>(dst) + off, static_cast<const char*>(src) + off,
                std::min(kChunk, bytes - off));
  }
}

CudaBackend& as_cuda(Backend& backend, const char* what) {
  auto* b = dynamic_cast<CudaBackend*>(&backend);
  if (!b) throw Error(cat(what, ": backend '", backend.name(), "' is not a CUDA backend"));
  return *b;
}
}  // namespace

Precision parse_precision(const std::string& name) {
  if (name == "tf32") return Precision::Tf32;
  if (name == "fp32-strict") return Precision::Fp32Strict;
  if (name == "bf16") return Precision::Bf16;
  throw Error(cat("precision '", name, "': expected tf32, fp32-strict or bf16"));
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Tf32: return "tf32";
    case Precision::Fp32Strict: return "fp32-strict";
    case Precision::Bf16: return "bf16";
  }
  return "?";
}

CudaBackend::CudaBackend(int device, Precision precision)
    : device_(device), precision_(precision), alloc_(std::make_shared<DeviceAllocator>(device)) {
  // Each handle is owned as soon as it exists, so a failure below releases what was made.
  OWT_CUDA_CHECK(cudaSetDevice(device_));
  cudaStream_t stream = nullptr;
  OWT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_.reset(stream);
  cublasHandle_t cublas = nullptr;
  OWT_CUBLAS_CHECK(cublasCreate(&cublas));
  cublas_.reset(cublas);
  OWT_CUBLAS_CHECK(cublasSetStream(cublas, stream));
  OWT_CUBLAS_CHECK(cublasSetPointerMode(cublas, CUBLAS_POINTER_MODE_HOST));
  // The compute type of each cublasGemmEx says the same; the math mode covers everything else.
  OWT_CUBLAS_CHECK(cublasSetMathMode(
      cublas, precision_ == Precision::Tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  cudnnHandle_t cudnn = nullptr;
  OWT_CUDNN_CHECK(cudnnCreate(&cudnn));
  cudnn_.reset(cudnn);
  OWT_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
  conv_ = std::make_unique<CudaConv>(*this);
  // A freed block may come back as another tensor: its cached bf16 copies must not.
  alloc_->set_release_hook([conv = conv_.get()](void* p, size_t bytes) { conv->forget(p, bytes); });
}

CudaBackend::~CudaBackend() {
  // No throwing here: report nothing, release everything that was made (members, in reverse
  // order of declaration, once queued work is done).
  cudaSetDevice(device_);
  alloc_->set_release_hook(nullptr);  // buffers may outlive the backend; conv_ does not
  if (stream_) cudaStreamSynchronize(stream_.get());
  conv_.reset();
  cudaGetLastError();
}

void CudaBackend::wrote(const void* p, size_t bytes) {
  if (conv_) conv_->forget(p, bytes);
}

// ---- memory -------------------------------------------------------------------------------

std::shared_ptr<Buffer> CudaBackend::allocate(size_t bytes) { return alloc_->allocate(bytes); }

void CudaBackend::copy(const void* src, void* dst, size_t bytes) {
  if (bytes == 0 || src == dst) return;
  wrote(dst, bytes);
  OWT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream()));
}

// The host buffer may be reused as soon as this returns, so its bytes are first copied into
// pinned memory (on the OpenMP threads when large); the upload itself runs asynchronously on
// the stream, and the other staging buffer takes the next upload meanwhile.
void CudaBackend::from_host(const void* host_src, void* dst, size_t bytes) {
  if (bytes == 0) return;
  wrote(dst, bytes);
  if (bytes > kMaxStaged) {
    OWT_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream()));
    OWT_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return;
  }
  void* pinned = staging_.acquire(bytes);
  host_copy(pinned, host_src, bytes);
  OWT_CUDA_CHECK(cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, stream()));
  staging_.used(stream());
}

std::shared_ptr<HostBuffer> CudaBackend::allocate_host(size_t bytes) {
  return PinnedHostBuffer::make(device_, bytes);
}

// From this device's pinned buffer: queued straight from it, no staging copy, and its event
// recorded (the caller refills it after wait_unused). From anything else: from_host.
void CudaBackend::upload(HostBuffer& src, size_t src_offset, void* dst, size_t bytes) {
  const char* from = src.range(src_offset, bytes);
  auto* pinned = dynamic_cast<PinnedHostBuffer*>(&src);
  if (!pinned || pinned->device() != device_) {
    from_host(from, dst, bytes);
    return;
  }
  if (bytes == 0) return;
  wrote(dst, bytes);
  OWT_CUDA_CHECK(cudaMemcpyAsync(dst, from, bytes, cudaMemcpyHostToDevice, stream()));
  pinned->used(stream());
}

// Waits for every op queued before it (the stream is in order), then copies out.
void CudaBackend::to_host(const void* src, void* host_dst, size_t bytes) {
  if (bytes == 0) return;
  if (bytes > kMaxStaged) {
    OWT_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
    OWT_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return;
  }
  void* pinned = staging_.acquire(bytes);
  OWT_CUDA_CHECK(cudaMemcpyAsync(pinned, src, bytes, cudaMemcpyDeviceToHost, stream()));
  OWT_CUDA_CHECK(cudaStreamSynchronize(stream()));
  host_copy(host_dst, pinned, bytes);
}

void CudaBackend::synchronize() { OWT_CUDA_CHECK(cudaStreamSynchronize(stream())); }

// ---- GEMM ---------------------------------------------------------------------------------

// Row-major C (m, n) is column-major C^T (n, m), and C^T = op(B)^T op(A)^T: cuBLAS gets the
// operands swapped and each one's own transpose flag unchanged.
void CudaBackend::gemm(Trans ta, Trans tb, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  wrote(c, (static_cast<size_t>(m - 1) * ldc + n) * sizeof(float));
  if (k <= 0) {  // C = beta * C, as the CPU backend
    launch_scale_matrix(c, m, n, ldc, beta, stream());
    return;
  }
  cublasComputeType_t compute = precision_ == Precision::Tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                : precision_ == Precision::Bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                : CUBLAS_COMPUTE_32F;
  cublasOperation_t op_a = ta == Trans::T ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_b = tb == Trans::T ? CUBLAS_OP_T : CUBLAS_OP_N;
  OWT_CUBLAS_CHECK(cublasGemmEx(cublas_.get(), op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb, a,
                                CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc, compute,
                                CUBLAS_GEMM_DEFAULT));
}

// ---- convolution: CudaConv ----------------------------------------------------------------

void CudaBackend::conv2d_forward(const ConvGeom& g, const float* x, const float* w,
                                 const float* bias, float* y) {
  wrote(y, sizeof(float) * g.n * g.k * g.oh * g.ow);
  conv_->forward(g, x, w, bias, y);
}
void CudaBackend::conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w,
                                       float* dx) {
  wrote(dx, sizeof(float) * g.n * g.c * g.h * g.w);
  conv_->backward_data(g, dy, w, dx);
}
void CudaBackend::conv2d_backward_filter(const ConvGeom& g, const float* x, const float* dy,
                                         float* dw, float* db) {
  wrote(dw, sizeof(float) * g.k * g.c * g.kh * g.kw);
  if (db) wrote(db, sizeof(float) * g.k);
  conv_->backward_filter(g, x, dy, dw, db);
}

// ---- the public functions of owt/backend/cuda.h --------------------------------------------
// Inside the plugin these are the real ones (hidden, like everything but the entry points);
// the program's own (src/backend/cuda_loader.cpp) reach them through owt_cuda_plugin_api.

bool cuda_backend_built() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error here
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(int device, const std::string& precision) {
  Precision p = parse_precision(precision);
  int count = cuda_device_count();
  if (device < 0 || device >= count)
    throw Error(cat("CUDA device ", device, " requested but ", count, " device",
                    count == 1 ? " is" : "s are", " visible"));
  return std::make_unique<CudaBackend>(device, p);
}

void* cuda_stream_of(Backend& backend) {
  return static_cast<void*>(as_cuda(backend, "cuda_stream_of").stream());
}

int cuda_device_of(Backend& backend) { return as_cuda(backend, "cuda_device_of").device_index(); }

void cuda_written_outside(Backend& backend, const void* p, size_t bytes) {
  as_cuda(backend, "cuda_written_outside").written_outside(p, bytes);
}

CudaMemoryStats cuda_memory_stats(Backend& backend) {
  return as_cuda(backend, "cuda_memory_stats").allocator().stats();
}

void cuda_reset_peak_memory(Backend& backend) {
  as_cuda(backend, "cuda_reset_peak_memory").allocator().reset_peak();
}

}  // namespace owt

OWT_CUDA_PLUGIN_EXPORT const owt::CudaPluginApi* owt_cuda_plugin_api() {
  static const owt::CudaPluginApi api{owt::kCudaPluginAbi,      OWT_CUDA_BUILD_ID,
                                      &owt::make_cuda_backend,  &owt::cuda_stream_of,
                                      &owt::cuda_device_of,     &owt::cuda_written_outside,
                                      &owt::cuda_memory_stats,  &owt::cuda_reset_peak_memory};
  return &api;
}
