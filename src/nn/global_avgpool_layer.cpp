// global_avgpool: (C, H, W) -> (C), y[n, c] = mean of x[n, c, :, :] (PyTorch's
// AdaptiveAvgPool2d(1) then flatten). No fields. Two gemms against a ones vector, so every
// backend runs it with the ops it already has.
#include "layer_factories.h"
#include "owt/nn/scratch.h"

namespace owt {
namespace {

class GlobalAvgPoolLayer : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "global_avgpool"; }

  Shape configure(const Shape& in) override {
    if (in.rank() != 3)
      throw Error(cat("layer '", name(), "': global_avgpool needs a (C, H, W) input, got ",
                      in.str()));
    channels_ = in[0];
    hw_ = in[1] * in[2];
    return Shape{channels_};
  }
  // ones_ (H W).
  int64_t scratch_bytes(int64_t) const override {
    return hw_ * static_cast<int64_t>(sizeof(float));
  }

  // x (rows, C, H, W) seen as (rows C, HW): y (rows C, 1) = x ones (HW, 1) / HW.
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    const int planes = static_cast<int>(x.size(0) * channels_), hw = static_cast<int>(hw_);
    if (planes == 0) return;
    ctx.backend.gemm(Trans::N, Trans::N, planes, 1, hw, 1.f / static_cast<float>(hw_), x.f32(),
                     hw, ones(ctx.backend), 1, 0.f, y.f32(), 1);
  }

  // dx (rows C, HW) = dy (rows C, 1) ones (1, HW) / HW.
  void backward(RunContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    const int planes = static_cast<int>(x.size(0) * channels_), hw = static_cast<int>(hw_);
    if (!dx || planes == 0) return;
    ctx.backend.gemm(Trans::N, Trans::N, planes, hw, 1, 1.f / static_cast<float>(hw_), dy.f32(),
                     1, ones(ctx.backend), hw, 0.f, dx->f32(), hw);
  }

 private:
  const float* ones(Backend& backend) {
    float* p = ones_.get(backend, Shape{hw_}).f32();
    backend.fill(p, static_cast<size_t>(hw_), 1.f);
    return p;
  }
  int64_t channels_ = 0, hw_ = 0;
  Scratch ones_;  // (H W) all 1
};

}  // namespace

std::unique_ptr<Layer> make_global_avgpool_layer(ConfigMap& cfg) {
  return std::make_unique<GlobalAvgPoolLayer>(cfg.get_string("name"));
}

}  // namespace owt
