// batchnorm: PyTorch's BatchNorm2d on a (C, H, W) input, BatchNorm1d on (F) (C = F, HW = 1).
// Fields: eps (1e-5), momentum (0.1), sync (true). Params weight (C) = 1, bias (C) = 0; buffers
// running_mean (C) = 0, running_var (C) = 1 (unbiased), num_batches_tracked (a 0-dim counter).
//
// Training normalises by the batch's statistics. With `sync` and this worker's rows as input
// (the data-parallel stage), the per-channel (sum x, sum x^2) are all-reduced before the
// forward, and (sum dy, sum dy xhat) before the backward, so K workers with b rows each compute
// exactly what one worker computes with K b rows (the K-worker invariant). `sync: false` uses
// each worker's own rows only (PyTorch DDP's default) and breaks that invariant: the running
// statistics then differ between workers and a checkpoint keeps rank 0's.
#include "layer_factories.h"
#include "owt/nn/init.h"
#include "owt/nn/scratch.h"

namespace owt {
namespace {

class BatchNormLayer : public Layer {
 public:
  BatchNormLayer(std::string name, float eps, float momentum, bool sync)
      : Layer(std::move(name)), eps_(eps), momentum_(momentum), sync_(sync) {}
  std::string type() const override { return "batchnorm"; }

  Shape configure(const Shape& in) override {
    if (placement().input.is_feature_shard())
      throw Error(cat("layer '", name(), "': batchnorm cannot take a feature shard (each worker "
                      "would hold only some of the ", in.str(), " features); put it where every "
                      "worker holds whole examples"));
    if (in.rank() != 1 && in.rank() != 3)
      throw Error(cat("layer '", name(), "': batchnorm needs a (C, H, W) or (F) input, got ",
                      in.str()));
    channels_ = in[0];
    hw_ = in.numel() / channels_;
    const Shape c{channels_};
    weight_ = make_replicated_param(name() + ".weight", c, InitSpec{InitSpec::Constant, 1.f, 0.f});
    bias_ = make_replicated_param(name() + ".bias", c, InitSpec{InitSpec::Constant, 0.f, 0.f});
    running_mean_ = make_buffer(".running_mean", c, 0.f);
    running_var_ = make_buffer(".running_var", c, 1.f);
    num_batches_tracked_ = make_buffer(".num_batches_tracked", Shape{}, 0.f);
    num_batches_tracked_.integer = true;
    return in;
  }

  // Batch statistics: a row's output depends on every row of the pass.
  bool mixes_rows() const override { return true; }
  // Synchronised: (sum x, sum x^2) forward and (sum dy, sum dy xhat) backward, 2C each.
  int64_t all_reduced_elements() const override { return synchronised() ? 4 * channels_ : 0; }

  std::vector<Param*> params() override { return {&weight_, &bias_}; }
  std::vector<Param*> buffers() override {
    return {&running_mean_, &running_var_, &num_batches_tracked_};
  }
  // stats_: save_mean (C), save_invstd (C), sums (2C) and the constant 1.
  int64_t scratch_bytes(int64_t) const override {
    return (4 * channels_ + 1) * static_cast<int64_t>(sizeof(float));
  }

  // x, y (rows, C, H, W) or (rows, F).
  void forward(RunContext& ctx, const Tensor& x, Tensor& y) override {
    const BatchNormGeom g = geom(x.size(0));
    Stats s = stats(ctx.backend);
    if (!ctx.training) {
      ctx.backend.batchnorm_forward_eval(g, x.f32(), weight_.value.f32(), bias_.value.f32(),
                                         running_mean_.value.f32(), running_var_.value.f32(),
                                         y.f32());
      return;
    }
    ctx.backend.batchnorm_sums(g, x.f32(), s.sums);
    const int64_t count = reduce_sums(ctx, s.sums, x.size(0));
    if (count <= 1)
      throw Error(cat("layer '", name(), "': batchnorm in training needs more than one value per ",
                      "channel, got ", count, " (a batch of one row on a (", channels_,
                      ") input?)"));
    ctx.backend.batchnorm_forward_train(g, x.f32(), s.sums, count, weight_.value.f32(),
                                        bias_.value.f32(), momentum_, running_mean_.value.f32(),
                                        running_var_.value.f32(), s.save_mean, s.save_invstd,
                                        y.f32());
    ctx.backend.fill(s.one, 1, 1.f);
    ctx.backend.axpy(1.f, s.one, num_batches_tracked_.value.f32(), 1);
  }

  // From the statistics of the last training forward.
  void backward(RunContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor* dx) override {
    OWT_CHECK(ctx.training, "batchnorm backward follows a training forward");
    const BatchNormGeom g = geom(x.size(0));
    Stats s = stats(ctx.backend);
    float* dsums = s.sums;  // [sum dy | sum dy xhat] over this worker's rows: d bias, d weight
    ctx.backend.batchnorm_backward_sums(g, x.f32(), dy.f32(), s.save_mean, s.save_invstd, dsums);
    ctx.backend.axpy(1.f, dsums, bias_.grad.f32(), static_cast<size_t>(channels_));
    ctx.backend.axpy(1.f, dsums + channels_, weight_.grad.f32(), static_cast<size_t>(channels_));
    // Reduced even when dx is null, so every worker makes the same collectives.
    const int64_t count = reduce_sums(ctx, dsums, x.size(0));
    if (dx)
      ctx.backend.batchnorm_backward_data(g, x.f32(), dy.f32(), dsums, count,
                                          weight_.value.f32(), s.save_mean, s.save_invstd,
                                          dx->f32());
  }

 private:
  // Views into stats_.
  struct Stats {
    float *save_mean, *save_invstd, *sums, *one;  // (C), (C), (2C), (1)
  };
  Stats stats(Backend& backend) {
    float* p = stats_.get(backend, Shape{4 * channels_ + 1}).f32();
    return Stats{p, p + channels_, p + 2 * channels_, p + 4 * channels_};
  }

  // Statistics over every worker's rows: this worker's rows are a shard of the batch.
  bool synchronised() const { return sync_ && placement().input.is_shard(0); }

  // All-reduces the (2C) sums over the workers when synchronised; returns the number of values
  // per channel they are over. Every worker calls it, also with no rows of its own.
  int64_t reduce_sums(RunContext& ctx, float* sums, int64_t rows) {
    if (!synchronised()) return rows * hw_;
    OWT_CHECK(ctx.global_rows >= rows, "global_rows ", ctx.global_rows, " < local rows ", rows);
    ctx.comm.all_reduce(sums, static_cast<size_t>(2 * channels_));
    return ctx.global_rows * hw_;
  }

  BatchNormGeom geom(int64_t rows) const {
    return BatchNormGeom{static_cast<int>(rows), static_cast<int>(channels_),
                         static_cast<int>(hw_), eps_};
  }

  Param make_buffer(const char* suffix, const Shape& shape, float value) const {
    Param b = make_replicated_param(name() + suffix, shape,
                                    InitSpec{InitSpec::Constant, value, 0.f});
    b.grad_placement = Placement::replicate();  // no gradient
    return b;
  }

  float eps_, momentum_;
  bool sync_;
  int64_t channels_ = 0, hw_ = 0;
  Param weight_, bias_;                                        // (C) gamma, beta
  Param running_mean_, running_var_, num_batches_tracked_;     // (C), (C), ()
  Scratch stats_;  // (4C + 1) save_mean, save_invstd, sums, 1
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm_layer(ConfigMap& cfg) {
  std::string name = cfg.get_string("name");
  double eps = cfg.get_float("eps", 1e-5);
  if (!(eps > 0)) cfg.fail("eps", cat("must be positive, got ", eps));
  double momentum = cfg.get_float("momentum", 0.1);
  if (!(momentum >= 0 && momentum <= 1))
    cfg.fail("momentum", cat("must be in [0, 1], got ", momentum));
  bool sync = cfg.get_bool("sync", true);
  return std::make_unique<BatchNormLayer>(name, static_cast<float>(eps),
                                          static_cast<float>(momentum), sync);
}

}  // namespace owt
