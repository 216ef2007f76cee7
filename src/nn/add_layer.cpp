// add: the elementwise sum of two or more inputs of equal shape (a residual connection), named
// by the layer's `inputs:` (read by the network, not here). No fields of its own.
// y = x_1 + ... + x_n; backward: dx_i = dy for every input.
#include <limits>

#include "layer_factories.h"

namespace owt {
namespace {

class AddLayer : public Layer {
 public:
  using Layer::Layer;
  std::string type() const override { return "add"; }
  size_t max_inputs() const override { return std::numeric_limits<size_t>::max(); }

  Shape configure(const Shape& in) override { return configure_inputs({in}); }
  Shape configure_inputs(const std::vector<Shape>& in) override {
    if (in.size() < 2)
      throw Error(cat("layer '", name(), "': add needs at least 2 inputs, got ", in.size()));
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i] != in[0])
        throw Error(cat("layer '", name(), "': input ", i + 1, " has shape ", in[i].str(),
                        " but input 1 has ", in[0].str()));
    return in[0];
  }

  // x: n tensors (rows, ...) -> y (rows, ...)
  void forward_inputs(RunContext& ctx, const std::vector<Tensor>& x, Tensor& y) override {
    const size_t n = static_cast<size_t>(y.numel());
    if (x[0].f32() != y.f32()) ctx.backend.copy(x[0].f32(), y.f32(), n * sizeof(float));
    for (size_t i = 1; i < x.size(); ++i) ctx.backend.axpy(1.f, x[i].f32(), y.f32(), n);
  }

  // dx[i] = dy for every non-null dx[i] (the network never names one input twice, so the dx
  // are distinct tensors).
  void backward_inputs(RunContext& ctx, const std::vector<Tensor>&, const Tensor&,
                       const Tensor& dy, const std::vector<Tensor*>& dx) override {
    const size_t n = static_cast<size_t>(dy.numel());
    for (Tensor* d : dx)
      if (d && d->f32() != dy.f32()) ctx.backend.copy(dy.f32(), d->f32(), n * sizeof(float));
  }

  void forward(RunContext&, const Tensor&, Tensor&) override {
    OWT_CHECK(false, "layer '", name(), "': add runs through forward_inputs (two or more inputs)");
  }
  void backward(RunContext&, const Tensor&, const Tensor&, const Tensor&, Tensor*) override {
    OWT_CHECK(false, "layer '", name(), "': add runs through backward_inputs (two or more inputs)");
  }
};

}  // namespace

std::unique_ptr<Layer> make_add_layer(ConfigMap& cfg) {
  return std::make_unique<AddLayer>(cfg.get_string("name"));
}

}  // namespace owt
