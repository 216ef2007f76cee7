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
  // One op's algorithm, once found: its math type and workspace size.
  template <typename Algo>
  struct Choice {
    bool found = false;
    Algo algo{};
    cudnnMathType_t math{};
    size_t ws = 0;
  };

  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // compute dtype
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Choice<cudnnConvolutionFwdAlgo_t> fwd;
  Choice<cudnnConvolutionBwdDataAlgo_t> data;
  Choice<cudnnConvolutionBwdFilterAlgo_t> filter;

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

// What differs between the ops. Operands in scratch-slot order: inputs a (slot 0), b (slot 1),
// output out (slot 2); find() and launch() hand them to cuDNN in its own order. An op that
// accumulates adds into out (beta = 1) in fp32, so its search must not write into out.
struct CudaConv::Forward {  // y = conv(x, w): a = x, b = w, out = y
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr const char* kName = "forward";
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static constexpr bool kAccumulates = false;
  static int64_t a_count(const ConvGeom& g) { return x_count(g); }
  static int64_t b_count(const ConvGeom& g) { return w_count(g); }
  static int64_t out_count(const ConvGeom& g) { return y_count(g); }
  static Plan::Choice<cudnnConvolutionFwdAlgo_t>& choice(Plan& p) { return p.fwd; }
  static void find(cudnnHandle_t cudnn, const Plan& p, const void* xs, const void* ws, void* ys,
                   int* count, Perf* results, void* find_ws, size_t find_bytes) {
    OWT_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(cudnn, p.x, xs, p.w, ws, p.conv, p.y,
                                                           ys, kAlgoCount, count, results,
                                                           find_ws, find_bytes));
  }
  static void launch(cudnnHandle_t cudnn, const Plan& p, const void* xs, const void* ws,
                     void* work, const float* beta, void* ys) {
    const float one = 1.f;
    OWT_CUDNN_CHECK(cudnnConvolutionForward(cudnn, &one, p.x, xs, p.w, ws, p.conv, p.fwd.algo,
                                            work, p.fwd.ws, beta, p.y, ys));
  }
};

struct CudaConv::BackwardData {  // dx = conv_data(dy, w): a = dy, b = w, out = dx
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr const char* kName = "backward-data";
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static constexpr bool kAccumulates = false;
  static int64_t a_count(const ConvGeom& g) { return y_count(g); }
  static int64_t b_count(const ConvGeom& g) { return w_count(g); }
  static int64_t out_count(const ConvGeom& g) { return x_count(g); }
  static Plan::Choice<cudnnConvolutionBwdDataAlgo_t>& choice(Plan& p) { return p.data; }
  static void find(cudnnHandle_t cudnn, const Plan& p, const void* dys, const void* ws, void* dxs,
                   int* count, Perf* results, void* find_ws, size_t find_bytes) {
    OWT_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn, p.w, ws, p.y, dys, p.conv,
                                                                p.x, dxs, kAlgoCount, count,
                                                                results, find_ws, find_bytes));
  }
  static void launch(cudnnHandle_t cudnn, const Plan& p, const void* dys, const void* ws,
                     void* work, const float* beta, void* dxs) {
    const float one = 1.f;
    OWT_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn, &one, p.w, ws, p.y, dys, p.conv,
                                                 p.data.algo, work, p.data.ws, beta, p.x,
                                                 dxs));
  }
};

struct CudaConv::BackwardFilter {  // dw += conv_filter(x, dy): a = x, b = dy, out = dw
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr const char* kName = "backward-filter";
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static constexpr bool kAccumulates = true;
  static int64_t a_count(const ConvGeom& g) { return x_count(g); }
  static int64_t b_count(const ConvGeom& g) { return y_count(g); }
  static int64_t out_count(const ConvGeom& g) { return w_count(g); }
  static Plan::Choice<cudnnConvolutionBwdFilterAlgo_t>& choice(Plan& p) { return p.filter; }
  static void find(cudnnHandle_t cudnn, const Plan& p, const void* xs, const void* dys, void* dws,
                   int* count, Perf* results, void* find_ws, size_t find_bytes) {
    OWT_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn, p.x, xs, p.y, dys, p.conv,
                                                                  p.w, dws, kAlgoCount, count,
                                                                  results, find_ws, find_bytes));
  }
  static void launch(cudnnHandle_t cudnn, const Plan& p, const void* xs, const void* dys,
                     void* work, const float* beta, void* dws) {
    const float one = 1.f;
    OWT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn, &one, p.x, xs, p.y, dys, p.conv,
                                                   p.filter.algo, work, p.filter.ws, beta,
                                                   p.w, dws));
  }
};

template <typename Op>
void* CudaConv::run(const ConvGeom& g, const float* a, const float* b, float* out) {
  const Precision prec = backend_.precision();
  const bool bf16 = prec == Precision::Bf16;
  const cudaStream_t stream = backend_.stream();
  Plan& p = plan(g);
  const void *as = a, *bs = b;
  void* outs = out;
  if (bf16) {
    void* ab = scratch(0, Op::a_count(g) * 2);
    void* bb = scratch(1, Op::b_count(g) * 2);
    launch_f32_to_bf16(a, ab, Op::a_count(g), stream);
    launch_f32_to_bf16(b, bb, Op::b_count(g), stream);
    as = ab, bs = bb, outs = scratch(2, Op::out_count(g) * 2);
  }
  auto& choice = Op::choice(p);
  if (!choice.found) {
    OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math(prec)));
    FindWorkspace fw(find_limit());
    // An accumulating op's search writes into scratch, never into out (bf16: out's copy).
    void* probe = Op::kAccumulates && !bf16 ? scratch(2, Op::out_count(g) * 4) : outs;
    typename Op::Perf results[Op::kAlgoCount];
    int count = 0;
    Op::find(backend_.cudnn(), p, as, bs, probe, &count, results, fw.ptr, fw.bytes);
    const auto* best = pick(results, count, prec, Op::kName, g);
    choice.algo = best->algo, choice.ws = best->memory;
    choice.math = prec == Precision::Fp32Strict ? CUDNN_FMA_MATH : best->mathType;
    choice.found = true;
  }
  OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, choice.math));
  // fp32: an accumulating op adds into out (beta = 1). bf16: every op overwrites out's copy
  // (beta = 0), which the caller converts or adds into out.
  const float one = 1.f, zero = 0.f;
  Op::launch(backend_.cudnn(), p, as, bs, workspace(choice.ws),
             Op::kAccumulates && !bf16 ? &one : &zero, outs);
  return outs;
}

void CudaConv::forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                       float* y) {
  if (y_count(g) == 0) return;
  void* ys = run<Forward>(g, x, w, y);
  const cudaStream_t stream = backend_.stream();
  if (backend_.precision() == Precision::Bf16)
    launch_bf16_to_f32_bias(ys, bias, y, g.n, g.k, plane(g), stream);
  else if (bias)
    launch_add_channel_bias(y, bias, g.n, g.k, plane(g), stream);
}

void CudaConv::backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  if (x_count(g) == 0) return;
  void* dxs = run<BackwardData>(g, dy, w, dx);
  if (backend_.precision() == Precision::Bf16)
    launch_bf16_to_f32_bias(dxs, nullptr, dx, g.n, g.c, int64_t{g.h} * g.w, backend_.stream());
}

void CudaConv::backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               float* db) {
  if (y_count(g) == 0) return;
  void* dws = run<BackwardFilter>(g, x, dy, dw);
  const cudaStream_t stream = backend_.stream();
  // fp32: run() added into dw; bf16: dw += float(its copy).
  if (backend_.precision() == Precision::Bf16) launch_bf16_accumulate(dws, dw, w_count(g), stream);
  if (db) launch_channel_sums(dy, db, g.n, g.k, plane(g), stream);
}

}  // namespace owt
