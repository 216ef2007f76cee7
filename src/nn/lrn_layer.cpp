// lrn: cross-channel local response normalisation (AlexNet). Fields: size (5), alpha (1e-4),
// beta (0.75), k (2); alpha is divided by size as in PyTorch's nn.LocalResponseNorm.
#include "layer_factories.h"
#include "owt/nn/scratch.h"

namespace owt {
namespace {

class LrnLayer : public Layer {
 public:
  LrnLayer(std::string name, int size, float alpha, float beta, float k)
      : Layer(std::move(name)), size_(size), alpha_(alpha), beta_(beta), k_(k) {}
  std::string type() const override { return "lrn"; }
  bool backward_needs_output() const override { return true; }

  Shape configure(const Shape& in) override {
    if (in.rank() != 3)
      throw Error(cat("layer '", name(), "': lrn needs a (C, H, W) input, got ", in.str()));
    in_ = in;
    return in;
  }
  // scale (rows, C, H, W).
  int64_t scratch_bytes(int64_t rows) const override {
    return rows * in_.numel() * static_cast<int64_t>(sizeof(float));
  }

  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    Tensor scale = scale_.get(ctx.backend, x.shape());
    ctx.backend.lrn_forward(geom(x.size(0)), x.f32(), scale.f32(), y.f32());
  }

  void backward(RunContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor* dx) override {
    if (!dx) return;
    Tensor scale = scale_.get(ctx.backend, x.shape());
    ctx.backend.lrn_backward(geom(x.size(0)), x.f32(), y.f32(), scale.f32(), dy.f32(), dx->f32());
  }

 private:
  LrnGeom geom(int64_t rows) const {
    return LrnGeom{static_cast<int>(rows), static_cast<int>(in_[0]), static_cast<int>(in_[1]),
                   static_cast<int>(in_[2]), size_, alpha_, beta_, k_};
  }
  int size_;
  float alpha_, beta_, k_;
  Shape in_;
  Scratch scale_;  // (rows, C, H, W) k + alpha/size * window sum of squares
};

}  // namespace

std::unique_ptr<Layer> make_lrn_layer(ConfigMap& cfg) {
  std::string name = cfg.get_string("name");
  int64_t size = cfg.get_int("size", 5);
  if (size <= 0 || size % 2 == 0) cfg.fail("size", "must be a positive odd integer");
  double alpha = cfg.get_float("alpha", 1e-4), beta = cfg.get_float("beta", 0.75);
  double k = cfg.get_float("k", 2.0);
  if (k <= 0) cfg.fail("k", "must be positive");
  return std::make_unique<LrnLayer>(name, static_cast<int>(size), static_cast<float>(alpha),
                                    static_cast<float>(beta), static_cast<float>(k));
}

}  // namespace owt
