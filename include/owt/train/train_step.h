// One optimizer step of training: the hybrid forward/backward plus the SGD updates, honouring
// fc_update: with `block`, the model-parallel stage's params update after every pipelined
// block (inside HybridStep) and the rest after the step; with `step`, everything after.
#pragma once
#include "owt/parallel/hybrid_step.h"
#include "owt/train/optimizer.h"

namespace owt {

class TrainStep {
 public:
  TrainStep(HybridStep& stepper, ParamStore& store, const SgdOptimizer& sgd, Backend& backend,
            const ModelConfig& cfg, const Network& net);
  // x: this worker's rows; labels (device) and labels_host: the whole global batch.
  EvalCounts run(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                 const BatchRows& rows, int64_t step, double lr);

 private:
  HybridStep& stepper_;
  ParamStore& store_;
  const SgdOptimizer& sgd_;
  Backend& backend_;
  uint64_t seed_;
  bool block_update_;
  std::vector<Param*> after_step_;  // params updated once per step
};

}  // namespace owt
