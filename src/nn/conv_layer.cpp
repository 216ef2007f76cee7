// conv: 2-D convolution layer (weight (K, C, KH, KW), bias (K)), data-parallel only.
// Fields: filters, size (or size_h/size_w), stride, pad, bias; init defaults as PyTorch.
#include <cmath>

#include "layer_factories.h"
#include "owt/nn/init.h"

namespace owt {
namespace {

class ConvLayer : public Layer {
 public:
  ConvLayer(std::string name, int filters, int kh, int kw, int stride, int pad, bool bias,
            std::string init)
      : Layer(std::move(name)), filters_(filters), kh_(kh), kw_(kw), stride_(stride), pad_(pad),
        has_bias_(bias), init_(std::move(init)) {}
  std::string type() const override { return "conv"; }

  Shape configure(const Shape& in) override {
    if (in.rank() != 3)
      throw Error(cat("layer '", name(), "': conv needs a (C, H, W) input, got ", in.str()));
    c_ = static_cast<int>(in[0]);
    h_ = static_cast<int>(in[1]);
    w_ = static_cast<int>(in[2]);
    oh_ = (h_ + 2 * pad_ - kh_) / stride_ + 1;
    ow_ = (w_ + 2 * pad_ - kw_) / stride_ + 1;
    if (h_ + 2 * pad_ < kh_ || w_ + 2 * pad_ < kw_ || oh_ <= 0 || ow_ <= 0)
      throw Error(cat("layer '", name(), "': a ", kh_, "x", kw_, " kernel does not fit the ",
                      in.str(), " input with pad ", pad_));
    int64_t fan_in = static_cast<int64_t>(c_) * kh_ * kw_;
    weight_ = make_replicated_param(name() + ".weight", Shape{filters_, c_, kh_, kw_},
                                    weight_init(init_, fan_in));
    if (has_bias_) bias_ = make_replicated_param(name() + ".bias", Shape{filters_}, bias_init(init_, fan_in));
    return Shape{filters_, oh_, ow_};
  }

  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    ConvGeom g = geom(x.size(0));
    ctx.backend.conv2d_forward(g, x.f32(), weight_.value.f32(),
                               has_bias_ ? bias_.value.f32() : nullptr, y.f32());
  }

  void backward(RunContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    ConvGeom g = geom(x.size(0));
    ctx.backend.conv2d_backward_filter(g, x.f32(), dy.f32(), weight_.grad.f32(),
                                       has_bias_ ? bias_.grad.f32() : nullptr);
    if (dx) ctx.backend.conv2d_backward_data(g, dy.f32(), weight_.value.f32(), dx->f32());
  }

  double forward_flops() const override {
    return 2.0 * filters_ * c_ * kh_ * kw_ * oh_ * ow_;
  }

  std::vector<Param*> params() override {
    if (has_bias_) return {&weight_, &bias_};
    return {&weight_};
  }

  // The CPU backend's oneDNN copies in its blocked layouts, kept per batch size (measured:
  // docs/BENCHMARKS.md, "Memory"): forward y (and x from 8 channels up), backward-filter x
  // (channels padded to 16) and dy, backward-data dx and dy (from 8 channels up), and three
  // copies of the weights.
  int64_t scratch_bytes(int64_t rows) const override {
    const int64_t plane = static_cast<int64_t>(h_) * w_, in = c_ * plane;
    const int64_t out = static_cast<int64_t>(filters_) * oh_ * ow_;
    const int64_t padded = (c_ + 15) / 16 * 16 * plane;
    const int64_t blocked_in = c_ >= 8 ? in : 0;
    const int64_t floats = rows * (out + blocked_in) + rows * (out + padded) +
                           (c_ >= 8 ? rows * (out + in) : 0) +
                           3 * (static_cast<int64_t>(filters_) * c_ * kh_ * kw_ + filters_);
    return floats * static_cast<int64_t>(sizeof(float));
  }
  // The CPU backend caches a oneDNN plan, with these buffers, per geometry (cpu_conv_dnnl.cpp).
  std::string scratch_key(int64_t rows) const override {
    const ConvGeom g = geom(rows);
    return cat("conv ", g.n, " ", g.c, " ", g.h, " ", g.w, " ", g.k, " ", g.kh, " ", g.kw, " ",
               g.stride_h, " ", g.stride_w, " ", g.pad_h, " ", g.pad_w);
  }

 private:
  ConvGeom geom(int64_t rows) const {
    return ConvGeom{static_cast<int>(rows), c_, h_, w_, filters_, kh_, kw_, stride_, stride_,
                    pad_, pad_, oh_, ow_};
  }

  int filters_, kh_, kw_, stride_, pad_;
  bool has_bias_;
  std::string init_;
  int c_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;
  Param weight_, bias_;
};

}  // namespace

std::unique_ptr<Layer> make_conv_layer(ConfigMap& cfg) {
  std::string name = cfg.get_string("name");
  int64_t filters = cfg.get_int("filters");
  if (filters <= 0) cfg.fail("filters", "must be a positive integer");
  int64_t size = cfg.get_int("size", 0);
  int64_t kh = cfg.get_int("size_h", size), kw = cfg.get_int("size_w", size);
  if (kh <= 0 || kw <= 0) cfg.fail("size", "must be a positive integer (or give size_h and size_w)");
  int64_t stride = cfg.get_int("stride", 1);
  if (stride <= 0) cfg.fail("stride", "must be a positive integer");
  int64_t pad = cfg.get_int("pad", 0);
  if (pad < 0) cfg.fail("pad", "must be zero or positive");
  bool bias = cfg.get_bool("bias", true);
  std::string init = cfg.get_choice("init", init_choices(), "default");
  return std::make_unique<ConvLayer>(name, static_cast<int>(filters), static_cast<int>(kh),
                                     static_cast<int>(kw), static_cast<int>(stride),
                                     static_cast<int>(pad), bias, init);
}

}  // namespace owt
