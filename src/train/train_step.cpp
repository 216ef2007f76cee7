// TrainStep: HybridStep::train followed by the SGD updates, with per-block FC updates when
// the model asks for the paper's variable batch size (pipelined transition, fc_update: block).
#include "owt/train/train_step.h"

namespace owt {

TrainStep::TrainStep(HybridStep& stepper, ParamStore& store, const SgdOptimizer& sgd,
                     Backend& backend, const ModelConfig& cfg, const Network& net)
    : stepper_(stepper), store_(store), sgd_(sgd), backend_(backend), seed_(cfg.seed),
      block_update_(cfg.parallel.fc_update == "block" && cfg.parallel.transition == "pipelined" &&
                    net.has_model_parallel_stage()) {
  after_step_ = block_update_ ? store.summed() : store.params();
}

EvalCounts TrainStep::run(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                          const BatchRows& rows, int64_t step, double lr) {
  EvalCounts c = stepper_.train(x, labels, labels_host, rows, step, seed_, [&] {
    sgd_.step(store_.model_stage(), lr, backend_);
    store_.zero_model_stage_grads(backend_);
  });
  sgd_.step(after_step_, lr, backend_);
  backend_.synchronize();
  return c;
}

}  // namespace owt
