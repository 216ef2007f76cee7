// The elementwise layers: relu, dropout (inverted, keyed by step, global example and global
// feature) and flatten (a reshape). All three keep a feature shard a feature shard.
#include "layer_factories.h"

namespace owt {
namespace {

class ReluLayer : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "relu"; }
  bool backward_needs_output() const override { return true; }
  Shape configure(const Shape& in) override { return in; }
  bool preserves_feature_shard() const override { return true; }
  bool can_run_in_place() const override { return true; }
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    ctx.backend.relu_forward(x.f32(), y.f32(), x.numel());
  }
  void backward(RunContext& ctx, const Tensor&, const Tensor& y, const Tensor& dy,
                Tensor* dx) override {
    if (dx) ctx.backend.relu_backward(y.f32(), dy.f32(), dx->f32(), y.numel());
  }
};

class DropoutLayer : public Layer {
 public:
  DropoutLayer(std::string name, float rate) : Layer(std::move(name)), rate_(rate) {}
  std::string type() const override { return "dropout"; }
  Shape configure(const Shape& in) override {
    features_ = in.numel();
    const Placement& input = placement().input;
    col0_ = input.is_feature_shard() ? input.begin : 0;  // the first global feature of this worker
    return in;
  }
  bool preserves_feature_shard() const override { return true; }
  bool can_run_in_place() const override { return true; }
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override { apply(ctx, x, y); }
  void backward(RunContext& ctx, const Tensor&, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    if (dx) apply(ctx, dy, *dx);
  }

 private:
  // Inference is the identity; training multiplies by the keyed mask / (1 - rate).
  void apply(RunContext& ctx, const Tensor& in, Tensor& out) {
    if (!ctx.training || rate_ == 0.f) {
      if (in.f32() != out.f32()) ctx.backend.copy(in.f32(), out.f32(), in.numel() * sizeof(float));
      return;
    }
    DropoutKey key{rng_key(ctx.seed, Purpose::Dropout), name_hash(name().c_str()),
                   static_cast<uint32_t>(ctx.step), ctx.row0, col0_, rate_};
    ctx.backend.dropout_apply(key, in.f32(), out.f32(), static_cast<int>(in.size(0)),
                              static_cast<int>(features_));
  }
  float rate_;
  int64_t features_ = 0, col0_ = 0;
};

class FlattenLayer : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "flatten"; }
  Shape configure(const Shape& in) override { return Shape{in.numel()}; }
  bool preserves_feature_shard() const override { return true; }
  bool can_run_in_place() const override { return true; }
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    if (x.f32() != y.f32()) ctx.backend.copy(x.f32(), y.f32(), x.numel() * sizeof(float));
  }
  void backward(RunContext& ctx, const Tensor&, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    if (dx && dx->f32() != dy.f32()) ctx.backend.copy(dy.f32(), dx->f32(), dy.numel() * sizeof(float));
  }
};

}  // namespace

std::unique_ptr<Layer> make_relu_layer(ConfigMap& cfg) {
  return std::make_unique<ReluLayer>(cfg.get_string("name"));
}

std::unique_ptr<Layer> make_dropout_layer(ConfigMap& cfg) {
  std::string name = cfg.get_string("name");
  double rate = cfg.get_float("rate", 0.5);
  if (rate < 0 || rate >= 1) cfg.fail("rate", cat("must be in [0, 1), got ", rate));
  return std::make_unique<DropoutLayer>(name, static_cast<float>(rate));
}

std::unique_ptr<Layer> make_flatten_layer(ConfigMap& cfg) {
  return std::make_unique<FlattenLayer>(cfg.get_string("name"));
}

}  // namespace owt
