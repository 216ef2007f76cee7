// CudaConv: convolution forward, backward-data and backward-filter on cuDNN's legacy API.
// Precision: tf32 runs fp32 descriptors with CUDNN_DEFAULT_MATH (TF32 tensor cores allowed,
// as PyTorch), fp32-strict forbids them (CUDNN_FMA_MATH, and any algorithm reporting tensor-op
// maths is skipped), bf16 converts the operands to bf16 scratch copies, computes with fp32
// accumulation (CUDNN_TENSOR_OP_MATH) and converts the result back (dw is accumulated in fp32).
// Bias add and bias gradient use own kernels in every mode (fp32, deterministic).
#include "cuda_conv.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "cuda_backend.h"
#include "cuda_check.h"

namespace owt {

struct CudaConv::Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // compute dtype
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool have_fwd = false, have_data = false, have_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t data{};
  cudnnConvolutionBwdFilterAlgo_t filter{};
  cudnnMathType_t fwd_math{}, data_math{}, filter_math{};
  size_t fwd_ws = 0, data_ws = 0, filter_ws = 0;

  ~Plan() {  // never throws
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

namespace {

constexpr size_t kMaxFindWorkspace = size_t{1} << 30;

int64_t x_count(const ConvGeom& g) { return int64_t{g.n} * g.c * g.h * g.w; }
int64_t w_count(const ConvGeom& g) { return int64_t{g.k} * g.c * g.kh * g.kw; }
int64_t y_count(const ConvGeom& g) { return int64_t{g.n} * g.k * g.oh * g.ow; }
int64_t plane(const ConvGeom& g) { return int64_t{g.oh} * g.ow; }

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The first (fastest) successful result that the precision allows.
template <typename Perf>
const Perf* pick(const Perf* results, int count, Precision p, const char* op, const ConvGeom& g) {
  for (int i = 0; i < count; ++i) {
    if (results[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (p == Precision::Fp32Strict && is_tensor_op(results[i].mathType)) continue;
    return &results[i];
  }
  throw Error(cat("cuDNN found no usable ", op, " algorithm for a convolution of input (", g.n,
                  ", ", g.c, ", ", g.h, ", ", g.w, ") with weight (", g.k, ", ", g.c, ", ", g.kh,
                  ", ", g.kw, "), stride ", g.stride_h, "x", g.stride_w, ", pad ", g.pad_h, "x",
                  g.pad_w));
}

// A device block for cudnnFind*, straight from the driver (so the caching allocator's pool
// and peak do not keep it): the largest of limit, limit/2, ... that fits, or none.
struct FindWorkspace {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit FindWorkspace(size_t limit) {
    for (size_t b = limit; b >= (size_t{1} << 20); b /= 2) {
      if (cudaMalloc(&ptr, b) == cudaSuccess) {
        bytes = b;
        return;
      }
      cudaGetLastError();
      ptr = nullptr;
    }
  }
  ~FindWorkspace() {
    if (ptr) cudaFree(ptr);
  }
};

}  // namespace

CudaConv::CudaConv(CudaBackend& backend) : backend_(backend) {}
CudaConv::~CudaConv() = default;

void* CudaConv::workspace(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (!workspace_ || workspace_->bytes < bytes) {
    workspace_.reset();  // back to the cache first, so the larger block may reuse memory
    workspace_ = backend_.allocate(bytes);
  }
  return workspace_->ptr;
}

void* CudaConv::scratch(int slot, size_t bytes) {
  auto& s = scratch_[slot];
  if (!s || s->bytes < bytes) {
    s.reset();
    s = backend_.allocate(bytes);
  }
  return s->ptr;
}

size_t CudaConv::find_limit() const {
  size_t free = 0, total = 0;
  OWT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return std::min(kMaxFindWorkspace, free / 2);
}

CudaConv::Plan& CudaConv::plan(const ConvGeom& g) {
  Key key{g.n, g.c, g.h, g.w, g.k, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.oh, g.ow};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;

  auto p = std::make_unique<Plan>();
  const bool bf16 = backend_.precision() == Precision::Bf16;
  const cudnnDataType_t dt = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  OWT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  OWT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  OWT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  OWT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  OWT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, g.n, g.c, g.h, g.w));
  OWT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW, g.k, g.c, g.kh, g.kw));
  OWT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g.pad_h, g.pad_w, g.stride_h,
                                                  g.stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
  int on = 0, ok = 0, oh = 0, ow = 0;
  OWT_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &ok, &oh, &ow));
  if (on != g.n || ok != g.k || oh != g.oh || ow != g.ow)
    throw Error(cat("internal error at ", __FILE__, ":", __LINE__, ": convolution output (", g.n,
                    ", ", g.k, ", ", g.oh, ", ", g.ow, ") but cuDNN computes (", on, ", ", ok,
                    ", ", oh, ", ", ow, ")"));
  OWT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, g.n, g.k, g.oh, g.ow));
  Plan& ref = *p;
  plans_.emplace(key, std::move(p));
  return ref;
}

// The math type a plan's op starts its search with; Find may report another, which is used.
static cudnnMathType_t search_math(Precision p) {
  switch (p) {
    case Precision::Tf32: return CUDNN_DEFAULT_MATH;
    case Precision::Fp32Strict: return CUDNN_FMA_MATH;
    case Precision::Bf16: return CUDNN_TENSOR_OP_MATH;
  }
  return CUDNN_DEFAULT_MATH;
}

void CudaConv::forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                       float* y) {
  if (y_count(g) == 0) return;
  const Precision prec = backend_.precision();
  const bool bf16 = prec == Precision::Bf16;
  const cudaStream_t stream = backend_.stream();
  Plan& p = plan(g);
  const void *xs = x, *ws = w;
  void* ys = y;
  if (bf16) {
    void* xb = scratch(0, x_count(g) * 2);
    void* wb = scratch(1, w_count(g) * 2);
    launch_f32_to_bf16(x, xb, x_count(g), stream);
    launch_f32_to_bf16(w, wb, w_count(g), stream);
    xs = xb, ws = wb, ys = scratch(2, y_count(g) * 2);
  }
  if (!p.have_fwd) {
    OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math(prec)));
    FindWorkspace fw(find_limit());
    cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    OWT_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
        backend_.cudnn(), p.x, xs, p.w, ws, p.conv, p.y, ys, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
        &count, results, fw.ptr, fw.bytes));
    const auto* best = pick(results, count, prec, "forward", g);
    p.fwd = best->algo, p.fwd_ws = best->memory;
    p.fwd_math = prec == Precision::Fp32Strict ? CUDNN_FMA_MATH : best->mathType;
    p.have_fwd = true;
  }
  OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.fwd_math));
  const float one = 1.f, zero = 0.f;
  OWT_CUDNN_CHECK(cudnnConvolutionForward(backend_.cudnn(), &one, p.x, xs, p.w, ws, p.conv, p.fwd,
                                          workspace(p.fwd_ws), p.fwd_ws, &zero, p.y, ys));
  if (bf16)
    launch_bf16_to_f32_bias(ys, bias, y, g.n, g.k, plane(g), stream);
  else if (bias)
    launch_add_channel_bias(y, bias, g.n, g.k, plane(g), stream);
}

void CudaConv::backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  if (x_count(g) == 0) return;
  const Precision prec = backend_.precision();
  const bool bf16 = prec == Precision::Bf16;
  const cudaStream_t stream = backend_.stream();
  Plan& p = plan(g);
  const void *dys = dy, *ws = w;
  void* dxs = dx;
  if (bf16) {
    void* dyb = scratch(0, y_count(g) * 2);
    void* wb = scratch(1, w_count(g) * 2);
    launch_f32_to_bf16(dy, dyb, y_count(g), stream);
    launch_f32_to_bf16(w, wb, w_count(g), stream);
    dys = dyb, ws = wb, dxs = scratch(2, x_count(g) * 2);
  }
  if (!p.have_data) {
    OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math(prec)));
    FindWorkspace fw(find_limit());
    cudnnConvolutionBwdDataAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    OWT_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        backend_.cudnn(), p.w, ws, p.y, dys, p.conv, p.x, dxs,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, results, fw.ptr, fw.bytes));
    const auto* best = pick(results, count, prec, "backward-data", g);
    p.data = best->algo, p.data_ws = best->memory;
    p.data_math = prec == Precision::Fp32Strict ? CUDNN_FMA_MATH : best->mathType;
    p.have_data = true;
  }
  OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.data_math));
  const float one = 1.f, zero = 0.f;
  OWT_CUDNN_CHECK(cudnnConvolutionBackwardData(backend_.cudnn(), &one, p.w, ws, p.y, dys, p.conv,
                                               p.data, workspace(p.data_ws), p.data_ws, &zero,
                                               p.x, dxs));
  if (bf16) launch_bf16_to_f32_bias(dxs, nullptr, dx, g.n, g.c, int64_t{g.h} * g.w, stream);
}

void CudaConv::backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               float* db) {
  if (y_count(g) == 0) return;
  const Precision prec = backend_.precision();
  const bool bf16 = prec == Precision::Bf16;
  const cudaStream_t stream = backend_.stream();
  Plan& p = plan(g);
  const void *xs = x, *dys = dy;
  void* dws = dw;
  if (bf16) {
    void* xb = scratch(0, x_count(g) * 2);
    void* dyb = scratch(1, y_count(g) * 2);
    launch_f32_to_bf16(x, xb, x_count(g), stream);
    launch_f32_to_bf16(dy, dyb, y_count(g), stream);
    xs = xb, dys = dyb, dws = scratch(2, w_count(g) * 2);
  }
  if (!p.have_filter) {
    OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math(prec)));
    FindWorkspace fw(find_limit());
    // dw accumulates, so the search writes into scratch, never into dw.
    void* probe = bf16 ? dws : scratch(2, w_count(g) * 4);
    cudnnConvolutionBwdFilterAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    OWT_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        backend_.cudnn(), p.x, xs, p.y, dys, p.conv, p.w, probe,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, results, fw.ptr, fw.bytes));
    const auto* best = pick(results, count, prec, "backward-filter", g);
    p.filter = best->algo, p.filter_ws = best->memory;
    p.filter_math = prec == Precision::Fp32Strict ? CUDNN_FMA_MATH : best->mathType;
    p.have_filter = true;
  }
  OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.filter_math));
  const float one = 1.f, zero = 0.f;
  // fp32: dw += directly (beta = 1); bf16: dw_b = ..., then dw += float(dw_b).
  OWT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(backend_.cudnn(), &one, p.x, xs, p.y, dys, p.conv,
                                                 p.filter, workspace(p.filter_ws), p.filter_ws,
                                                 bf16 ? &zero : &one, p.w, dws));
  if (bf16) launch_bf16_accumulate(dws, dw, w_count(g), stream);
  if (db) launch_channel_sums(dy, db, g.n, g.k, plane(g), stream);
}

}  // namespace owt
