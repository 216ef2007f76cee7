// linear: y = x W^T + b with W (out, in) as in PyTorch, placed one of three ways by the plan.
//
// Replicated (data-parallel stage): every worker holds W; x and y are this worker's rows.
//
// Column-parallel ("split, then stack"; Megatron's ColumnParallelLinear), x Replicate:
//     W = [W_1; ...; W_K]  (worker k holds output rows [begin_k, end_k) of W and of b)
//     y_k = x W_k^T + b_k  (rows, out_k);  y = [y_1 ... y_K] all-gathered along the features
//     when gather_output, else y_k stays a feature shard, Shard(1), for the next layer.
//     dx = sum_k dy_k W_k  -> each worker's dy_k W_k is Partial; the step reduces it.
//
// Row-parallel ("split, then add"; Megatron's RowParallelLinear), x a feature shard x_k:
//     W = [W_1 ... W_K]    (worker k holds input columns [begin_k, end_k) of W; b replicated)
//     y = sum_k x_k W_k^T + b   (partial products all-reduced, then b added once: Replicate)
//     dx_k = dy W_k        (this worker's own feature shard: no communication)
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
  double forward_flops() const override { return 2.0 * in_local_ * out_local_; }

  Placement output_placement() const override {
    if (row_parallel()) return Placement::replicate();  // partial products summed in forward
    if (!column_parallel()) return placement().input;   // replicated: rows stay rows
    if (placement().gather_output) return Placement::replicate();
    return Placement::shard(1, weight_.placement.begin, weight_.placement.end, outputs_);
  }
  Placement input_grad_placement() const override {
    return column_parallel() && placement().workers > 1 ? Placement::partial() : placement().input;
  }

  Shape configure(const Shape& in) override {
    const LayerPlacement& place = placement();
    const Placement& x = place.input;
    if (x.is_feature_shard() && !place.model_parallel)
      throw Error(cat("layer '", name(), "': a data-parallel linear cannot take a feature shard"));
    inputs_ = x.is_feature_shard() ? x.size : in.numel();
    const int64_t split = row_parallel() ? inputs_ : outputs_;
    if (place.model_parallel && place.workers > split)
      throw Error(cat("layer '", name(), "': ", split, row_parallel() ? " inputs" : " outputs",
                      " cannot be split over ", place.workers, " workers"));
    Shape w_shape{outputs_, inputs_};
    InitSpec w_init = weight_init(init_, inputs_), b_init = bias_init(init_, inputs_);
    const std::string w_name = name() + ".weight", b_name = name() + ".bias";
    if (column_parallel()) {
      weight_ = make_sharded_param(w_name, w_shape, 0, place.rank, place.workers, w_init);
      bias_ = make_sharded_param(b_name, Shape{outputs_}, 0, place.rank, place.workers, b_init);
    } else if (row_parallel()) {  // the bias is added once, after the sum
      weight_ = make_sharded_param(w_name, w_shape, 1, place.rank, place.workers, w_init);
      bias_ = make_replicated_param(b_name, Shape{outputs_}, b_init);
      OWT_CHECK(weight_.placement.begin == x.begin && weight_.placement.end - x.begin == in.numel(),
                "row-parallel input shard does not match the weight shard");
    } else {
      weight_ = make_replicated_param(w_name, w_shape, w_init);
      bias_ = make_replicated_param(b_name, Shape{outputs_}, b_init);
    }
    in_local_ = row_parallel() ? in.numel() : inputs_;
    out_local_ = column_parallel() ? weight_.placement.end - weight_.placement.begin : outputs_;
    return Shape{column_parallel() && !place.gather_output ? out_local_ : outputs_};
  }

  // x (rows, in_local) -> y (rows, outputs), or (rows, out_local) for a shard kept a shard.
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    const int rows = static_cast<int>(x.size(0)), in = static_cast<int>(in_local_);
    const int out = static_cast<int>(out_local_);
    const bool gather = gathers_across_workers();
    Tensor local = gather ? local_out_.get(ctx.backend, Shape{rows, out_local_}) : y;
    ctx.backend.gemm(Trans::N, Trans::T, rows, out, in, 1.f, x.f32(), in, weight_.value.f32(), in,
                     0.f, local.f32(), out);
    if (row_parallel() && placement().workers > 1)
      ctx.comm.all_reduce(local.f32(), local.numel());
    if (has_bias_) ctx.backend.add_row_vector(local.f32(), bias_.value.f32(), rows, out);
    if (gather) gather_columns(ctx, local, y);
  }

  void backward(RunContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    const int rows = static_cast<int>(x.size(0)), in = static_cast<int>(in_local_);
    const int out = static_cast<int>(out_local_);
    // This worker's columns of dy: (rows, out_local).
    Tensor dy_local = dy;
    if (gathers_across_workers()) {
      dy_local = local_out_.get(ctx.backend, Shape{rows, out_local_});
      ctx.backend.copy_columns(dy.f32(), static_cast<int>(outputs_), static_cast<int>(weight_.placement.begin),
                               dy_local.f32(), out, 0, rows, out);
    }
    // dW (out_local, in_local) += dy_local^T x ; db += column sums of dy_local.
    ctx.backend.gemm(Trans::T, Trans::N, out, in, rows, 1.f, dy_local.f32(), out, x.f32(), in, 1.f,
                     weight_.grad.f32(), in);
    if (has_bias_) ctx.backend.sum_rows(dy_local.f32(), bias_.grad.f32(), rows, out);
    // dx (rows, in_local) = dy_local W: partial over workers when column-parallel, this
    // worker's own input shard when row-parallel.
    if (dx)
      ctx.backend.gemm(Trans::N, Trans::N, rows, in, out, 1.f, dy_local.f32(), out,
                       weight_.value.f32(), in, 0.f, dx->f32(), in);
  }

  std::vector<Param*> params() override {
    if (has_bias_) return {&weight_, &bias_};
    return {&weight_};
  }

  // local_out_ (rows, out_local) and gathered_ (rows, outputs) when gathering columns; and
  // the sgemm's packed dy (rows, out_local) for dW when 384 or more inputs (measured with
  // OpenBLAS on the CPU backend, kept for oneDNN's sgemm: docs/BENCHMARKS.md, "Memory").
  int64_t scratch_bytes(int64_t rows) const override {
    int64_t floats = in_local_ >= 384 ? rows * out_local_ : 0;
    if (gathers_across_workers()) floats += rows * (out_local_ + outputs_);
    return floats * static_cast<int64_t>(sizeof(float));
  }

 private:
  // The plan's two model-parallel placements; neither: replicated (data-parallel stage).
  bool column_parallel() const {
    return placement().model_parallel && !placement().input.is_feature_shard();
  }
  bool row_parallel() const {
    return placement().model_parallel && placement().input.is_feature_shard();
  }
  // Column-parallel with a whole output: compute a shard of the columns, gather the others.
  bool gathers_across_workers() const {
    return column_parallel() && placement().gather_output && placement().workers > 1;
  }

  // local (rows, out_local) on every worker -> y (rows, outputs): all-gather, then interleave
  // the K column blocks ("split, then stack").
  void gather_columns(RunContext& ctx, const Tensor& local, Tensor& y) {
    int rows = static_cast<int>(local.size(0)), K = placement().workers;
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

  int64_t outputs_, inputs_ = 0;        // full widths
  int64_t in_local_ = 0, out_local_ = 0;  // this worker's part of W: (out_local, in_local)
  bool has_bias_;
  std::string init_;
  Param weight_, bias_;  // weight (out_local, in_local), bias (out_local) or (outputs)
  Scratch local_out_;    // (rows, out_local) this worker's output columns
  Scratch gathered_;     // (K blocks of (rows, out_local_r)) as received
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
