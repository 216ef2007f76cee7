// predict_step: walks the step as HybridStep runs it (hybrid_step.cpp) — data-parallel forward,
// transition, model-parallel stage with its layers' collectives, transition backward,
// data-parallel backward filling gradient buckets — on a StepTimeline. The collectives and
// their element counts are the cost model's (cost_model.cpp); a test holds the two equal.
#include "owt/parallel/step_time_model.h"

#include <algorithm>

#include "owt/parallel/cost_model.h"
#include "owt/parallel/grad_buckets.h"
#include "owt/parallel/network.h"

namespace owt {

// ---- the timeline --------------------------------------------------------------------------

void StepTimeline::compute(double seconds) {
  clock_ += seconds;
  compute_ += seconds;
}

void StepTimeline::blocking(double seconds) {
  clock_ = std::max(clock_, link_) + seconds;
  link_ = clock_;
  comm_ += seconds;
}

size_t StepTimeline::launch(double seconds) {
  link_ = std::max(clock_, link_) + overlap_ * seconds;
  pending_.push_back({link_, (1 - overlap_) * seconds, false});
  comm_ += seconds;
  return pending_.size() - 1;
}

void StepTimeline::wait(size_t handle) {
  Pending& p = pending_.at(handle);
  if (p.done) return;
  clock_ = std::max(clock_, p.link_end) + p.at_wait;
  link_ = std::max(link_, clock_);
  p.done = true;
}

void StepTimeline::wait_all() {
  for (size_t h = 0; h < pending_.size(); ++h) wait(h);
}

// ---- the step ------------------------------------------------------------------------------

namespace {

constexpr double kFloat = sizeof(float);

// Work of one example in layer i: its forward FLOPs, or for layers without (activations,
// pooling, the loss) the elements it reads or writes, whichever is more.
double work_per_row(const Network& net, size_t i) {
  const double flops = net.layer(i).forward_flops();
  if (flops > 0) return flops;
  return static_cast<double>(std::max(net.input_shape(i).numel(), net.output_shape(i).numel()));
}

// Parameter elements this worker holds for layers [begin, end).
double local_param_elements(Network& net, size_t begin, size_t end) {
  int64_t n = 0;
  for (size_t i = begin; i < end; ++i)
    for (Param* p : net.layer(i).params()) n += p->local_shape().numel();
  return static_cast<double>(n);
}

class StepWalk {
 public:
  StepWalk(const NetworkSpec& spec, int K, int64_t b, ParallelMode mode, const StepProfile& profile,
           const CommCalibration& comm)
      : spec_(spec), K_(K), b_(b), net_(spec, 0, K, mode), one_(spec, 0, 1, ParallelMode::Owt),
        profile_(profile), comm_(comm), line_(K > 1 ? comm.overlap : 1.0),
        block_updates_(spec.parallel.fc_update == FcUpdate::Block && spec.parallel.transition == Transition::Pipelined &&
                       net_.has_model_parallel_stage() && K > 1) {
    check_profile_matches();
    model_stage_params_ = net_.has_model_parallel_stage()
                              ? local_param_elements(net_, net_.transition(), net_.size()) : 0;
    profiled_params_ = std::max(1.0, local_param_elements(one_, 0, one_.size()));
  }

  StepPrediction run() {
    const bool mp = net_.has_model_parallel_stage();
    const size_t t = mp ? net_.transition() : net_.size() - 1;
    forward(0, t, b_);
    if (!mp) {
      loss(b_);
      backward(0, t, b_);
      finish_buckets();
      line_.blocking(seconds(CommOp::AllReduce, 3));  // loss, top-1, top-5 summed
    } else {
      if (spec_.parallel.transition == Transition::Pipelined && K_ > 1)
        pipelined(t);
      else
        allgather(t);
      backward(0, t, b_);
      finish_buckets();
    }
    // Zeroing and the update of what is left (with block updates the model-parallel stage
    // has updated after each block already).
    const double all = local_param_elements(net_, 0, net_.size());
    line_.compute(update_seconds(all - (block_updates_ ? model_stage_params_ : 0)));
    return StepPrediction{line_.now(), line_.compute_seconds(), line_.comm_seconds()};
  }

 private:
  void check_profile_matches() {
    for (size_t i = 0; i < net_.size(); ++i) profile_.of(net_.layer(i).name());
  }

  // The profile's time outside the layers (zeroing, the SGD update), per parameter element.
  double update_seconds(double elements) {
    return profile_.other_seconds() * elements / profiled_params_;
  }

  // Seconds of one `op` moving `elements` per rank (comm_fit.h's convention).
  double seconds(CommOp op, double elements) const { return comm_.seconds(op, elements * kFloat, K_); }

  // Layer i's measured time scaled from the profile's rows and shard to `rows` rows here.
  double scaled(size_t i, double measured, int64_t rows) const {
    const double here = static_cast<double>(rows) * work_per_row(net_, i);
    const double there = static_cast<double>(profile_.batch) * work_per_row(one_, i);
    return measured * here / there;
  }
  double forward_time(size_t i, int64_t rows) const {
    return scaled(i, profile_.of(net_.layer(i).name()).forward, rows);
  }
  double backward_time(size_t i, int64_t rows) const {
    return scaled(i, profile_.of(net_.layer(i).name()).backward, rows);
  }

  bool in_model_stage(size_t i) const { return net_.has_model_parallel_stage() && i >= net_.transition(); }

  // Layers [begin, end) forward on `rows` rows, each followed by its collectives.
  void forward(size_t begin, size_t end, int64_t rows) {
    for (size_t i = begin; i < end; ++i) {
      line_.compute(forward_time(i, rows));
      Layer& layer = net_.layer(i);
      const LayerPlacement& place = net_.placement(i);
      const bool shard_in = place.input.is_feature_shard();
      if (!in_model_stage(i)) {
        if (layer.all_reduced_elements() > 0)
          line_.blocking(seconds(CommOp::AllReduce, static_cast<double>(layer.all_reduced_elements())));
      } else if (place.model_parallel && shard_in) {  // row-parallel: partial outputs summed
        line_.blocking(seconds(CommOp::AllReduce, static_cast<double>(rows * full_outputs(layer))));
      } else if (place.model_parallel && place.gather_output) {  // column-parallel, gathered
        line_.blocking(seconds(CommOp::AllGather, static_cast<double>(rows * full_outputs(layer)) / K_));
      }
    }
  }

  // The loss on `rows` rows: forward (with hit counts) and its collectives over a class shard,
  // then backward.
  void loss(int64_t rows) {
    const size_t i = net_.size() - 1;
    line_.compute(forward_time(i, rows));
    if (in_model_stage(i) && net_.placement(i).input.is_feature_shard()) {
      const double r = static_cast<double>(rows);
      const double topk = static_cast<double>(std::min<int64_t>(5, spec_.classes));
      line_.blocking(seconds(CommOp::AllGather, 2 * r));
      line_.blocking(seconds(CommOp::AllReduce, r * static_cast<double>(net_.loss().reduced_values_per_row())));
      line_.blocking(seconds(CommOp::AllGather, 2 * topk * r));
    }
    line_.compute(backward_time(i, rows));
  }

  // Layers [begin, end) backward, last first: data-parallel layers fill gradient buckets,
  // column-parallel ones inside the stage sum their partial input gradients.
  void backward(size_t begin, size_t end, int64_t rows) {
    for (size_t i = end; i-- > begin;) {
      line_.compute(backward_time(i, rows));
      Layer& layer = net_.layer(i);
      if (in_model_stage(i)) {
        const LayerPlacement& place = net_.placement(i);
        if (place.model_parallel && !place.input.is_feature_shard() && i != net_.transition())
          line_.blocking(seconds(CommOp::AllReduce, static_cast<double>(rows * net_.input_shape(i).numel())));
        continue;
      }
      for (Param* p : layer.params())
        if (p->summed_over_workers()) ready_ += p->stored_numel();  // as GradBuckets sums them
      const int64_t bucket = static_cast<int64_t>(kGradBucketBytes / sizeof(float));
      while (K_ > 1 && ready_ - launched_ >= bucket) launch_bucket(bucket);
    }
  }

  void launch_bucket(int64_t elements) {
    line_.launch(seconds(CommOp::AllReduce, static_cast<double>(elements)));
    launched_ += elements;
  }

  void finish_buckets() {
    if (K_ > 1 && ready_ > launched_) launch_bucket(ready_ - launched_);
    line_.wait_all();
  }

  // Scheme (a): all B rows gathered, the stage on them, the input gradient reduce-scattered.
  void allgather(size_t t) {
    const int64_t B = b_ * K_;
    const double d = static_cast<double>(net_.input_shape(t).numel());
    line_.blocking(seconds(CommOp::AllGather, static_cast<double>(b_) * d));
    stage(t, B);
    if (transition_partial(t)) line_.blocking(seconds(CommOp::ReduceScatter, static_cast<double>(b_) * d));
  }

  // Scheme (b): block j+1 broadcast while block j runs the stage; each block's input gradient
  // reduced asynchronously onto its owner.
  void pipelined(size_t t) {
    const double block = static_cast<double>(b_) * static_cast<double>(net_.input_shape(t).numel());
    size_t inflight = line_.launch(seconds(CommOp::Broadcast, block));
    for (int j = 0; j < K_; ++j) {
      line_.wait(inflight);
      if (j + 1 < K_) inflight = line_.launch(seconds(CommOp::Broadcast, block));
      stage(t, b_);
      if (transition_partial(t)) line_.launch(seconds(CommOp::Reduce, block));
      if (block_updates_) line_.compute(update_seconds(model_stage_params_));  // fc_update: block
    }
    line_.wait_all();
  }

  void stage(size_t t, int64_t rows) {
    forward(t, net_.size() - 1, rows);
    loss(rows);
    backward(t, net_.size() - 1, rows);
  }

  bool transition_partial(size_t t) { return net_.layer(t).input_grad_placement().is_partial(); }

  static int64_t full_outputs(Layer& layer) { return layer.params().front()->full_shape[0]; }

  const NetworkSpec& spec_;
  const int K_;
  const int64_t b_;
  Network net_, one_;
  const StepProfile& profile_;
  const CommCalibration& comm_;
  StepTimeline line_;
  const bool block_updates_;        // the model-parallel stage updates after every block
  double model_stage_params_ = 0;   // this worker's parameter elements in that stage
  double profiled_params_ = 1;      // the profiled (one) worker's parameter elements
  int64_t ready_ = 0, launched_ = 0;  // summed gradient elements final / in buckets launched
};

}  // namespace

StepPrediction predict_step(const NetworkSpec& spec, int workers, int64_t batch, ParallelMode mode,
                            const StepProfile& profile, const CommCalibration& comm) {
  return StepWalk(spec, workers, batch, mode, profile, comm).run();
}

}  // namespace owt
