// CudaConv: convolution forward, backward-data and backward-filter on cuDNN's legacy API.
// Precision: tf32 runs fp32 descriptors with CUDNN_DEFAULT_MATH (TF32 tensor cores allowed,
// as PyTorch), fp32-strict forbids them (CUDNN_FMA_MATH; any algorithm reporting tensor-op
// maths, and FFT and Winograd ones, are skipped), bf16 converts the operands to bf16 copies,
// computes with fp32 accumulation (CUDNN_TENSOR_OP_MATH) and converts the result back (dw is
// accumulated in fp32). A bf16 geometry for which cuDNN finds no engine (3-channel NCHW input,
// say) runs in TF32 instead, and says so once. cuDNN only ever sees 256-byte aligned pointers
// (cudaMalloc's alignment; ParamStore starts every parameter on a 256-byte boundary): fp32
// operands that are views at other offsets (a block of activation rows, say) are staged
// through aligned scratch. Bias add and bias gradient use own kernels in every mode (fp32,
// deterministic).
#include "cuda_conv.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
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

  bool bf16 = false;  // descriptors and operands in bf16 (else fp32)
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // compute dtype
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Choice<cudnnConvolutionFwdAlgo_t> fwd;
  Choice<cudnnConvolutionBwdDataAlgo_t> data;
  Choice<cudnnConvolutionBwdFilterAlgo_t> filter;

  // (Re)describes x, w and y in `dt` (bf16 plans that fall back to fp32 call it again).
  void set_descriptors(const ConvGeom& g, cudnnDataType_t dt) {
    OWT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, g.n, g.c, g.h, g.w));
    OWT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, g.k, g.c, g.kh, g.kw));
    OWT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, g.n, g.k, g.oh, g.ow));
  }

  ~Plan() {  // never throws
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

namespace {

constexpr size_t kMaxFindWorkspace = size_t{1} << 30;
constexpr uintptr_t kAlign = 256;  // what cudaMalloc guarantees; cuDNN wants >= 16 bytes
constexpr int kSlotA = 0, kSlotB = 1, kSlotOut = 2, kSlotParts = 3;

int64_t x_count(const ConvGeom& g) { return int64_t{g.n} * g.c * g.h * g.w; }
int64_t w_count(const ConvGeom& g) { return int64_t{g.k} * g.c * g.kh * g.kw; }
int64_t y_count(const ConvGeom& g) { return int64_t{g.n} * g.k * g.oh * g.ow; }
int64_t plane(const ConvGeom& g) { return int64_t{g.oh} * g.ow; }

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlign == 0; }

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

std::string describe(const ConvGeom& g) {
  return cat("input (", g.n, ", ", g.c, ", ", g.h, ", ", g.w, ") with weight (", g.k, ", ", g.c,
             ", ", g.kh, ", ", g.kw, "), stride ", g.stride_h, "x", g.stride_w, ", pad ", g.pad_h,
             "x", g.pad_w);
}

// FFT and Winograd algorithms compute in a transformed domain, with errors of 1e-6..1e-5
// relative where a direct or GEMM algorithm's are rounding only: fp32-strict leaves them out.
bool transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The first (fastest) successful result that the precision allows, or null: fp32-strict takes
// neither tensor-op maths nor a transformed-domain algorithm.
template <typename Perf>
const Perf* pick(const Perf* results, int count, Precision p) {
  for (int i = 0; i < count; ++i) {
    if (results[i].status != CUDNN_STATUS_SUCCESS) continue;
    const bool strict = p == Precision::Fp32Strict;
    if (strict && (is_tensor_op(results[i].mathType) || transforms(results[i].algo))) continue;
    return &results[i];
  }
  return nullptr;
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

// The old block goes back to the cache before the larger one is asked for: if that cudaMalloc
// fails, the allocator hands every cached block (this one too) back to the driver and retries.
void* CudaConv::workspace(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (!workspace_ || workspace_->bytes < bytes) {
    workspace_.reset();
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

// ---- bf16 copies --------------------------------------------------------------------------
// A copy stays valid while nothing writes its source: every CudaBackend op reports what it
// writes (CudaBackend::wrote), and a freed source block drops its copies (the allocator's
// release hook). In a training step this converts each conv input once (forward; reused by
// backward_filter), each weight once (forward; reused by backward_data) and each output
// gradient once (backward_filter; reused by backward_data). Memory written outside the
// backend's ops is never a convolution operand between a forward and its backward: NCCL
// writes gradients, the transition's activations (linear-layer inputs) and the transition's
// input gradient, which the next op (a backend op, reported) consumes before any conv reads it.

const void* CudaConv::bf16_copy(const float* src, size_t count) {
  std::shared_ptr<Buffer> evicted;  // released after the lock: its release hook calls forget()
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    for (auto it = copies_.begin(); it != copies_.end(); ++it) {
      if (it->src == src && it->count == count) {
        // Now the newest: the other operand's copy, made next, must not evict this one (its
        // block could come back as that very copy).
        std::rotate(it, it + 1, copies_.end());
        return copies_.back().copy->ptr;
      }
    }
    if (copies_.size() >= kMaxCopies) {
      evicted = std::move(copies_.front().copy);
      copies_.erase(copies_.begin());
    }
  }
  std::shared_ptr<Buffer> copy = backend_.allocate(count * 2);
  launch_f32_to_bf16(src, copy->ptr, count, backend_.stream());
  void* ptr = copy->ptr;
  std::lock_guard<std::mutex> lock(copies_mu_);
  copies_.push_back({src, count, std::move(copy)});
  return ptr;
}

void CudaConv::forget(const void* p, size_t bytes) {
  std::vector<std::shared_ptr<Buffer>> dead;  // released after the lock (see bf16_copy)
  std::lock_guard<std::mutex> lock(copies_mu_);
  for (auto it = copies_.begin(); it != copies_.end();) {
    if (overlaps(it->src, it->count * sizeof(float), p, bytes)) {
      dead.push_back(std::move(it->copy));
      it = copies_.erase(it);
    } else {
      ++it;
    }
  }
  // `dead` dies after `lock` (declared first): the blocks' release hooks find copies_ unlocked.
}

// ---- plans -----------------------------------------------------------------------------------

CudaConv::Plan& CudaConv::plan(const ConvGeom& g) {
  Key key{g.n, g.c, g.h, g.w, g.k, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.oh, g.ow};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;

  auto p = std::make_unique<Plan>();
  p->bf16 = backend_.precision() == Precision::Bf16;
  OWT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  OWT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  OWT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  OWT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  // Accumulation in fp32 whatever the operands' type.
  OWT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g.pad_h, g.pad_w, g.stride_h,
                                                  g.stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
  p->set_descriptors(g, p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT);
  int on = 0, ok = 0, oh = 0, ow = 0;
  OWT_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &ok, &oh, &ow));
  if (on != g.n || ok != g.k || oh != g.oh || ow != g.ow)
    throw Error(cat("internal error at ", __FILE__, ":", __LINE__, ": convolution output (", g.n,
                    ", ", g.k, ", ", g.oh, ", ", g.ow, ") but cuDNN computes (", on, ", ", ok,
                    ", ", oh, ", ", ow, ")"));
  Plan& ref = *p;
  plans_.emplace(key, std::move(p));
  return ref;
}

// The math type an op's search starts from: Find may report another for the algorithm it
// picks, and that reported one is what the launch sets (fp32-strict keeps FMA regardless).
static cudnnMathType_t search_math(Precision p, bool bf16_plan) {
  if (bf16_plan) return CUDNN_TENSOR_OP_MATH;
  return p == Precision::Fp32Strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;  // tf32, bf16 fallback
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
  static cudnnStatus_t find(cudnnHandle_t cudnn, const Plan& p, const void* xs, const void* ws,
                            void* ys, int* count, Perf* results, void* find_ws,
                            size_t find_bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(cudnn, p.x, xs, p.w, ws, p.conv, p.y, ys,
                                                  kAlgoCount, count, results, find_ws,
                                                  find_bytes);
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
  static cudnnStatus_t find(cudnnHandle_t cudnn, const Plan& p, const void* dys, const void* ws,
                            void* dxs, int* count, Perf* results, void* find_ws,
                            size_t find_bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn, p.w, ws, p.y, dys, p.conv, p.x,
                                                       dxs, kAlgoCount, count, results, find_ws,
                                                       find_bytes);
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
  static cudnnStatus_t find(cudnnHandle_t cudnn, const Plan& p, const void* xs, const void* dys,
                            void* dws, int* count, Perf* results, void* find_ws,
                            size_t find_bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn, p.x, xs, p.y, dys, p.conv, p.w,
                                                         dws, kAlgoCount, count, results,
                                                         find_ws, find_bytes);
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
CudaConv::Result CudaConv::run(const ConvGeom& g, const float* a, const float* b, float* out) {
  const Precision prec = backend_.precision();
  const cudaStream_t stream = backend_.stream();
  Plan& p = plan(g);
  const size_t na = Op::a_count(g), nb = Op::b_count(g), nout = Op::out_count(g);
  const void *as = a, *bs = b;
  void* outs = out;
  bool staged_out = false;  // fp32: out is not aligned; the op runs on an aligned copy
  if (p.bf16) {
    as = bf16_copy(a, na);
    bs = bf16_copy(b, nb);
    outs = scratch(kSlotOut, nout * 2);
  } else {
    if (!aligned(a)) {
      as = scratch(kSlotA, na * sizeof(float));
      OWT_CUDA_CHECK(cudaMemcpyAsync(const_cast<void*>(as), a, na * sizeof(float),
                                     cudaMemcpyDeviceToDevice, stream));
    }
    if (!aligned(b)) {
      bs = scratch(kSlotB, nb * sizeof(float));
      OWT_CUDA_CHECK(cudaMemcpyAsync(const_cast<void*>(bs), b, nb * sizeof(float),
                                     cudaMemcpyDeviceToDevice, stream));
    }
    if (!aligned(out)) {
      staged_out = true;
      outs = scratch(kSlotOut, nout * sizeof(float));
      if (Op::kAccumulates)
        OWT_CUDA_CHECK(cudaMemcpyAsync(outs, out, nout * sizeof(float), cudaMemcpyDeviceToDevice,
                                       stream));
    }
  }
  auto& choice = Op::choice(p);
  if (!choice.found) {
    OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, search_math(prec, p.bf16)));
    typename Op::Perf results[Op::kAlgoCount];
    int count = 0;
    cudnnStatus_t rc;
    {
      FindWorkspace fw(find_limit());
      // An accumulating op's search writes into a block of its own, never into out (or the
      // staged copy of out, which holds out's values): Find runs every algorithm with beta 0.
      void* probe = outs;
      std::shared_ptr<Buffer> probe_block;
      if (Op::kAccumulates && !p.bf16) {
        probe_block = backend_.allocate(nout * sizeof(float));
        probe = probe_block->ptr;
      }
      rc = Op::find(backend_.cudnn(), p, as, bs, probe, &count, results, fw.ptr, fw.bytes);
    }
    const auto* best = rc == CUDNN_STATUS_SUCCESS ? pick(results, count, prec) : nullptr;
    if (!best && p.bf16) {
      // No bf16 engine for this geometry (cuDNN's legacy API may have none for a 3-channel
      // NCHW input): the whole plan computes in fp32 with TF32 from now on, said once.
      // On stderr: stdout may be a JSON document (owt bench --json).
      std::fprintf(stderr, "owt: cuDNN has no bf16 %s engine for a convolution of %s (%s); this "
                   "convolution runs in TF32 instead\n",
                   Op::kName, describe(g).c_str(),
                   rc == CUDNN_STATUS_SUCCESS ? "no algorithm succeeded" : cudnnGetErrorString(rc));
      p.bf16 = false;
      p.set_descriptors(g, CUDNN_DATA_FLOAT);
      p.fwd.found = p.data.found = p.filter.found = false;
      return run<Op>(g, a, b, out);  // once: the plan is fp32 now
    }
    if (rc != CUDNN_STATUS_SUCCESS)
      ::owt::cuda_detail::throw_call_error("cuDNN", "cudnnFindConvolution*AlgorithmEx",
                                           __FILE__, __LINE__, cudnnGetErrorString(rc));
    if (!best)
      throw Error(cat("cuDNN found no usable ", Op::kName, " algorithm for a convolution of ",
                      describe(g), " in ", precision_name(prec)));
    choice.algo = best->algo, choice.ws = best->memory;
    choice.math = prec == Precision::Fp32Strict ? CUDNN_FMA_MATH : best->mathType;
    choice.found = true;
  }
  OWT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, choice.math));
  // fp32: an accumulating op adds into out (beta = 1). bf16: every op overwrites out's copy
  // (beta = 0), which the caller converts or adds into out.
  const float one = 1.f, zero = 0.f;
  Op::launch(backend_.cudnn(), p, as, bs, workspace(choice.ws),
             Op::kAccumulates && !p.bf16 ? &one : &zero, outs);
  if (staged_out)
    OWT_CUDA_CHECK(cudaMemcpyAsync(out, outs, nout * sizeof(float), cudaMemcpyDeviceToDevice,
                                   stream));
  return Result{p.bf16 ? outs : nullptr};
}

void CudaConv::forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                       float* y) {
  if (y_count(g) == 0) return;
  Result r = run<Forward>(g, x, w, y);
  const cudaStream_t stream = backend_.stream();
  if (r.bf16)
    launch_bf16_to_f32_bias(r.bf16, bias, y, g.n, g.k, plane(g), stream);
  else if (bias)
    launch_add_channel_bias(y, bias, g.n, g.k, plane(g), stream);
}

void CudaConv::backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  if (x_count(g) == 0) return;
  Result r = run<BackwardData>(g, dy, w, dx);
  if (r.bf16)
    launch_bf16_to_f32_bias(r.bf16, nullptr, dx, g.n, g.c, int64_t{g.h} * g.w, backend_.stream());
}

void CudaConv::backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               float* db) {
  if (y_count(g) == 0) return;
  Result r = run<BackwardFilter>(g, x, dy, dw);
  const cudaStream_t stream = backend_.stream();
  // fp32: run() added into dw; bf16: dw += float(its copy).
  if (r.bf16) launch_bf16_accumulate(r.bf16, dw, w_count(g), stream);
  if (db) {
    const size_t parts = static_cast<size_t>(channel_sums_parts(g.n, plane(g))) * g.k;
    launch_channel_sums(dy, db, g.n, g.k, plane(g),
                        static_cast<float*>(scratch(kSlotParts, parts * sizeof(float))), stream);
  }
}

}  // namespace owt
