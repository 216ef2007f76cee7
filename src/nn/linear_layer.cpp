// linear: y = x W^T + b with W (out, in) as in PyTorch. Data-parallel it is replicated; model-
// parallel it is column-parallel: worker k owns rows [begin, end) of W and b (output features).
#include "layer_factories.h"
#include "owt/nn/init.h"
#include "owt/nn/scratch.h"

namespace owt {
namespace {

class LinearLayer : public Layer {
 public:
  LinearLayer(std::string name, int64_t outputs, bool bias, std::string init)
      : Layer(std::move(name)), outputs_(outputs), has_bias_(bias), init_(std::move(init)) {}
  std::string type() const override { return "linear"; }
  bool supports_model_parallel() const override { return true; }
  bool input_grad_is_partial() const override { return sharded_ && place_.workers > 1; }

  bool output_shard(int64_t* col0, int64_t* cols_total) const override {
    if (gathers()) return false;
    *col0 = weight_.begin;
    *cols_total = outputs_;
    return true;
  }

  Shape setup(const Shape& in, const LayerPlacement& place) override {
    if (place.parallel == Parallel::Model && place.workers > outputs_)
      throw Error(cat("layer '", name(), "': ", outputs_, " outputs cannot be split over ",
                      place.workers, " workers"));
    if (place.input_sharded)
      throw Error(cat("layer '", name(), "': linear cannot take a feature-sharded input"));
    place_ = place;
    inputs_ = in.numel();
    sharded_ = place.parallel == Parallel::Model;
    Shape w_shape{outputs_, inputs_};
    InitSpec w_init = weight_init(init_, inputs_), b_init = bias_init(init_, inputs_);
    if (sharded_) {
      weight_ = make_sharded_param(name() + ".weight", w_shape, 0, place.rank, place.workers, w_init);
      if (has_bias_)
        bias_ = make_sharded_param(name() + ".bias", Shape{outputs_}, 0, place.rank, place.workers, b_init);
    } else {
      weight_ = make_replicated_param(name() + ".weight", w_shape, w_init);
      if (has_bias_) bias_ = make_replicated_param(name() + ".bias", Shape{outputs_}, b_init);
    }
    local_ = weight_.end - weight_.begin;
    return Shape{gathers() ? outputs_ : local_};
  }

  // x (rows, in) -> y (rows, out) gathered, or (rows, local) for a shard that stays a shard.
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    int rows = static_cast<int>(x.size(0));
    bool gather = gathers_across_workers();
    Tensor local = gather ? local_out_.get(ctx.backend, Shape{rows, local_}) : y;
    ctx.backend.gemm(Trans::N, Trans::T, rows, static_cast<int>(local_), static_cast<int>(inputs_),
                     1.f, x.f32(), static_cast<int>(inputs_), weight_.value.f32(),
                     static_cast<int>(inputs_), 0.f, local.f32(), static_cast<int>(local_));
    if (has_bias_) ctx.backend.add_row_vector(local.f32(), bias_.value.f32(), rows, static_cast<int>(local_));
    if (gather) gather_columns(ctx, local, y);
  }

  void backward(RunContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    int rows = static_cast<int>(x.size(0));
    int in = static_cast<int>(inputs_), n = static_cast<int>(local_);
    // This worker's columns of dy: (rows, local).
    Tensor dy_local = dy;
    if (gathers_across_workers()) {
      dy_local = local_out_.get(ctx.backend, Shape{rows, local_});
      ctx.backend.copy_columns(dy.f32(), static_cast<int>(outputs_), static_cast<int>(weight_.begin),
                               dy_local.f32(), n, 0, rows, n);
    }
    // dW (local, in) += dy_local^T x ; db += column sums of dy_local.
    ctx.backend.gemm(Trans::T, Trans::N, n, in, rows, 1.f, dy_local.f32(), n, x.f32(), in, 1.f,
                     weight_.grad.f32(), in);
    if (has_bias_) ctx.backend.sum_rows(dy_local.f32(), bias_.grad.f32(), rows, n);
    // dx (rows, in) = dy_local W_local: a partial sum over workers when sharded.
    if (dx)
      ctx.backend.gemm(Trans::N, Trans::N, rows, in, n, 1.f, dy_local.f32(), n,
                       weight_.value.f32(), in, 0.f, dx->f32(), in);
  }

  double forward_flops() const override { return 2.0 * inputs_ * local_; }

  std::vector<Param*> params() override {
    if (has_bias_) return {&weight_, &bias_};
    return {&weight_};
  }

 private:
  // The output is whole (replicated layer, or a shard that is gathered).
  bool gathers() const { return !sharded_ || place_.gather_output; }
  // This worker computes a shard of the columns and all-gathers the others.
  bool gathers_across_workers() const {
    return sharded_ && place_.gather_output && place_.workers > 1;
  }

  // local (rows, local) on every worker -> y (rows, outputs): all-gather, then interleave the
  // K column blocks ("split, then stack").
  void gather_columns(RunContext& ctx, const Tensor& local, Tensor& y) {
    int rows = static_cast<int>(local.size(0)), K = place_.workers;
    std::vector<size_t> counts = shard_counts(outputs_, K, rows);
    Tensor blocks = gathered_.get(ctx.backend, Shape{rows * outputs_});
    ctx.comm.all_gather(local.f32(), blocks.f32(), counts);
    size_t offset = 0;
    for (int r = 0; r < K; ++r) {
      int cols = static_cast<int>(counts[r] / rows);
      ctx.backend.copy_columns(blocks.f32() + offset, cols, 0, y.f32(), static_cast<int>(outputs_),
                               static_cast<int>(shard_begin(outputs_, r, K)), rows, cols);
      offset += counts[r];
    }
  }

  int64_t outputs_, inputs_ = 0, local_ = 0;
  bool has_bias_;
  std::string init_;
  bool sharded_ = false;
  LayerPlacement place_;
  Param weight_, bias_;       // weight (local, in), bias (local)
  Scratch local_out_;         // (rows, local) this worker's output columns
  Scratch gathered_;          // (K blocks of (rows, local_r)) as received
};

}  // namespace

std::unique_ptr<Layer> make_linear_layer(ConfigMap& cfg) {
  std::string name = cfg.get_string("name");
  int64_t outputs = cfg.get_int("outputs");
  if (outputs <= 0) cfg.fail("outputs", "must be a positive integer");
  bool bias = cfg.get_bool("bias", true);
  std::string init = cfg.get_choice("init", init_choices(), "default");
  return std::make_unique<LinearLayer>(name, outputs, bias, init);
}

}  // namespace owt
