// DnnlConv: convolution through oneDNN (the library PyTorch's CPU convolutions use). owt's
// tensors are plain NCHW / OIHW fp32; each op reorders into the layouts (and, for bf16, the
// data type) oneDNN picks and back. Primitives and reorders are built once per geometry.
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <map>

#include "cpu_conv.h"

namespace owt {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

// A tensor as owt holds it (plain layout) and as a primitive wants it, with the reorders
// between them built once. When the layouts agree the user's pointer is used directly.
struct Port {
  memory::desc user, want;
  memory internal;            // the primitive's copy when want != user
  dnnl::reorder to_internal;  // user -> want (inputs)
  dnnl::reorder to_user;      // want -> user (outputs; accumulating if `accumulate`)

  Port() = default;
  Port(const dnnl::engine& eng, const memory::desc& u, const memory::desc& w, bool is_input,
       bool accumulate)
      : user(u), want(w) {
    if (want == user && !accumulate) return;
    internal = memory(want, eng);
    if (is_input) {
      to_internal = dnnl::reorder(dnnl::reorder::primitive_desc(eng, user, eng, want));
    } else {
      dnnl::primitive_attr attr;
      if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.f);  // user = reorder(internal) + user
        attr.set_post_ops(ops);
      }
      to_user = dnnl::reorder(dnnl::reorder::primitive_desc(eng, want, eng, user, attr));
    }
  }
  bool direct() const { return !internal; }
};

}  // namespace

struct DnnlConv::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::map<std::array<int, 13>, std::unique_ptr<Plan>> plans;
};

struct DnnlConv::Plan {
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  Port fwd_src, fwd_wei, fwd_dst;
  Port bd_dst, bd_wei, bd_src;           // diff_dst in, weights in, diff_src out
  Port bw_src, bw_dst, bw_wei, bw_bias;  // src in, diff_dst in, diff_weights/bias accumulated
  memory::desc bias_md;
};

namespace {

// Bind a user pointer through a port: returns the memory the primitive should see, after
// reordering an input into it.
memory bind_input(Port& p, const dnnl::engine& eng, dnnl::stream& s, const float* ptr) {
  memory user(p.user, eng, const_cast<float*>(ptr));
  if (p.direct()) return user;
  p.to_internal.execute(s, user, p.internal);
  return p.internal;
}
memory output_target(Port& p, const dnnl::engine& eng, float* ptr) {
  return p.direct() ? memory(p.user, eng, ptr) : p.internal;
}
void finish_output(Port& p, const dnnl::engine& eng, dnnl::stream& s, float* ptr) {
  if (p.direct()) return;
  memory user(p.user, eng, ptr);
  p.to_user.execute(s, p.internal, user);
}

}  // namespace

DnnlConv::DnnlConv(bool bf16) : impl_(std::make_unique<Impl>()), bf16_(bf16) {}
DnnlConv::~DnnlConv() = default;

DnnlConv::Plan& DnnlConv::plan(const ConvGeom& g) {
  std::array<int, 13> key{g.n,        g.c,        g.h,     g.w,     g.k,  g.kh, g.kw,
                          g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.oh, g.ow};
  auto it = impl_->plans.find(key);
  if (it != impl_->plans.end()) return *it->second;

  const dnnl::engine& eng = impl_->eng;
  memory::dims x_dims{g.n, g.c, g.h, g.w}, w_dims{g.k, g.c, g.kh, g.kw}, b_dims{g.k},
      y_dims{g.n, g.k, g.oh, g.ow}, strides{g.stride_h, g.stride_w}, pad_l{g.pad_h, g.pad_w},
      pad_r{(g.oh - 1) * g.stride_h + g.kh - g.h - g.pad_h,
            (g.ow - 1) * g.stride_w + g.kw - g.w - g.pad_w};
  memory::desc x_user(x_dims, dt::f32, tag::nchw), w_user(w_dims, dt::f32, tag::oihw),
      b_user(b_dims, dt::f32, tag::x), y_user(y_dims, dt::f32, tag::nchw);
  // What the primitives read (x, w, dy: bf16 when bf16_) and write (y, dx, dw: always f32).
  const dt in = bf16_ ? dt::bf16 : dt::f32;
  memory::desc x_in(x_dims, in, tag::any), w_in(w_dims, in, tag::any), y_in(y_dims, in, tag::any),
      x_out(x_dims, dt::f32, tag::any), w_out(w_dims, dt::f32, tag::any),
      y_out(y_dims, dt::f32, tag::any);
  const auto algo = dnnl::algorithm::convolution_direct;

  auto p = std::make_unique<Plan>();
  p->bias_md = b_user;
  try {
    dnnl::convolution_forward::primitive_desc fwd_pd(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, x_in, w_in,
                                        b_user, y_out, strides, pad_l, pad_r),
        eng);
    p->fwd = dnnl::convolution_forward(fwd_pd);
    p->fwd_src = Port(eng, x_user, fwd_pd.src_desc(), true, false);
    p->fwd_wei = Port(eng, w_user, fwd_pd.weights_desc(), true, false);
    p->fwd_dst = Port(eng, y_user, fwd_pd.dst_desc(), false, false);

    dnnl::convolution_backward_data::primitive_desc bd_pd(
        dnnl::convolution_backward_data::desc(algo, x_out, w_in, y_in, strides, pad_l, pad_r),
        eng, fwd_pd);
    p->bwd_data = dnnl::convolution_backward_data(bd_pd);
    p->bd_dst = Port(eng, y_user, bd_pd.diff_dst_desc(), true, false);
    p->bd_wei = Port(eng, w_user, bd_pd.weights_desc(), true, false);
    p->bd_src = Port(eng, x_user, bd_pd.diff_src_desc(), false, false);

    dnnl::convolution_backward_weights::primitive_desc bw_pd(
        dnnl::convolution_backward_weights::desc(algo, x_in, w_out, b_user, y_in, strides, pad_l,
                                                 pad_r),
        eng, fwd_pd);
    p->bwd_weights = dnnl::convolution_backward_weights(bw_pd);
    p->bw_src = Port(eng, x_user, bw_pd.src_desc(), true, false);
    p->bw_dst = Port(eng, y_user, bw_pd.diff_dst_desc(), true, false);
    p->bw_wei = Port(eng, w_user, bw_pd.diff_weights_desc(), false, true);
    p->bw_bias = Port(eng, b_user, bw_pd.diff_bias_desc(), false, true);
  } catch (const dnnl::error& e) {
    throw Error(cat("oneDNN convolution N=", g.n, " C=", g.c, " ", g.h, "x", g.w, " K=", g.k,
                    " ", g.kh, "x", g.kw, " stride ", g.stride_h, "x", g.stride_w, " pad ",
                    g.pad_h, "x", g.pad_w, " -> ", g.oh, "x", g.ow, ": ", e.what()));
  }
  return *(impl_->plans[key] = std::move(p));
}

void DnnlConv::forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                       float* y) {
  Plan& p = plan(g);
  const dnnl::engine& eng = impl_->eng;
  dnnl::stream& s = impl_->strm;
  std::vector<float> zero_bias;
  if (!bias) zero_bias.assign(g.k, 0.f), bias = zero_bias.data();
  memory src = bind_input(p.fwd_src, eng, s, x);
  memory wei = bind_input(p.fwd_wei, eng, s, w);
  memory dst = output_target(p.fwd_dst, eng, y);
  p.fwd.execute(s, {{DNNL_ARG_SRC, src},
                    {DNNL_ARG_WEIGHTS, wei},
                    {DNNL_ARG_BIAS, memory(p.bias_md, eng, const_cast<float*>(bias))},
                    {DNNL_ARG_DST, dst}});
  finish_output(p.fwd_dst, eng, s, y);
  s.wait();
}

void DnnlConv::backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  Plan& p = plan(g);
  const dnnl::engine& eng = impl_->eng;
  dnnl::stream& s = impl_->strm;
  memory ddst = bind_input(p.bd_dst, eng, s, dy);
  memory wei = bind_input(p.bd_wei, eng, s, w);
  memory dsrc = output_target(p.bd_src, eng, dx);
  p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wei},
                         {DNNL_ARG_DIFF_SRC, dsrc}});
  finish_output(p.bd_src, eng, s, dx);
  s.wait();
}

void DnnlConv::backward_filter(const ConvGeom& g, const float* x, const float* dy, float* dw,
                               float* db) {
  Plan& p = plan(g);
  const dnnl::engine& eng = impl_->eng;
  dnnl::stream& s = impl_->strm;
  memory src = bind_input(p.bw_src, eng, s, x);
  memory ddst = bind_input(p.bw_dst, eng, s, dy);
  p.bwd_weights.execute(s, {{DNNL_ARG_SRC, src},
                            {DNNL_ARG_DIFF_DST, ddst},
                            {DNNL_ARG_DIFF_WEIGHTS, p.bw_wei.internal},
                            {DNNL_ARG_DIFF_BIAS, p.bw_bias.internal}});
  finish_output(p.bw_wei, eng, s, dw);  // dw += diff_weights
  if (db) finish_output(p.bw_bias, eng, s, db);
  s.wait();
}

}  // namespace owt
