// maxpool and avgpool layers: size, stride (default = size), pad; output floor((H+2p-size)/s)+1
// as in PyTorch. AlexNet's overlapping 3x3 stride 2 is `{size: 3, stride: 2}`.
#include "layer_factories.h"
#include "owt/nn/scratch.h"

namespace owt {
namespace {

class PoolLayer : public Layer {
 public:
  PoolLayer(std::string name, bool is_max, int size, int stride, int pad)
      : Layer(std::move(name)), is_max_(is_max), size_(size), stride_(stride), pad_(pad) {}
  std::string type() const override { return is_max_ ? "maxpool" : "avgpool"; }

  Shape configure(const Shape& in) override {
    if (in.rank() != 3)
      throw Error(cat("layer '", name(), "': ", type(), " needs a (C, H, W) input, got ", in.str()));
    c_ = static_cast<int>(in[0]);
    h_ = static_cast<int>(in[1]);
    w_ = static_cast<int>(in[2]);
    if (h_ + 2 * pad_ < size_ || w_ + 2 * pad_ < size_)
      throw Error(cat("layer '", name(), "': a ", size_, "x", size_, " window does not fit the ",
                      in.str(), " input"));
    if (2 * pad_ > size_)
      throw Error(cat("layer '", name(), "': pad ", pad_, " must be at most half the window ", size_));
    oh_ = (h_ + 2 * pad_ - size_) / stride_ + 1;
    ow_ = (w_ + 2 * pad_ - size_) / stride_ + 1;
    return Shape{c_, oh_, ow_};
  }
  // maxpool's argmax (rows, C, OH, OW) int32.
  int64_t scratch_bytes(int64_t rows) const override {
    return is_max_ ? rows * c_ * oh_ * ow_ * static_cast<int64_t>(sizeof(int32_t)) : 0;
  }

  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    PoolGeom g = geom(x.size(0));
    if (is_max_) {
      Tensor argmax = argmax_.get(ctx.backend, y.shape(), DType::I32);
      ctx.backend.maxpool_forward(g, x.f32(), y.f32(), argmax.i32());
    } else {
      ctx.backend.avgpool_forward(g, x.f32(), y.f32());
    }
  }

  void backward(RunContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor* dx) override {
    if (!dx) return;
    PoolGeom g = geom(x.size(0));
    if (is_max_) {
      Tensor argmax = argmax_.get(ctx.backend, y.shape(), DType::I32);
      ctx.backend.maxpool_backward(g, dy.f32(), argmax.i32(), dx->f32());
    } else {
      ctx.backend.avgpool_backward(g, dy.f32(), dx->f32());
    }
  }

 private:
  PoolGeom geom(int64_t rows) const {
    return PoolGeom{static_cast<int>(rows), c_, h_, w_, size_, stride_, pad_, oh_, ow_};
  }
  bool is_max_;
  int size_, stride_, pad_;
  int c_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;
  Scratch argmax_;  // (rows, C, OH, OW) flat input index of each max
};

std::unique_ptr<Layer> make_pool_layer(ConfigMap& cfg, bool is_max) {
  std::string name = cfg.get_string("name");
  int64_t size = cfg.get_int("size");
  if (size <= 0) cfg.fail("size", "must be a positive integer");
  int64_t stride = cfg.get_int("stride", size);
  if (stride <= 0) cfg.fail("stride", "must be a positive integer");
  int64_t pad = cfg.get_int("pad", 0);
  if (pad < 0) cfg.fail("pad", "must be zero or positive");
  return std::make_unique<PoolLayer>(name, is_max, static_cast<int>(size),
                                     static_cast<int>(stride), static_cast<int>(pad));
}

}  // namespace

std::unique_ptr<Layer> make_maxpool_layer(ConfigMap& cfg) { return make_pool_layer(cfg, true); }
std::unique_ptr<Layer> make_avgpool_layer(ConfigMap& cfg) { return make_pool_layer(cfg, false); }

}  // namespace owt
