// Model: one worker's share of a model file, assembled in one place (llm.c's single model
// struct): the placed network, its params and buffers in one store, the hybrid step and the
// optimizer; and one training step (forward/backward, then SGD, with per-block FC updates).
#pragma once
#include <cstdint>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/nn/param_store.h"
#include "owt/parallel/hybrid_step.h"
#include "owt/parallel/network.h"
#include "owt/train/model_config.h"
#include "owt/train/optimizer.h"

namespace owt {

// Whether the params start from the keyed initialisation (training from scratch) or are left
// for a checkpoint to fill (evaluation, prediction).
enum class ParamInit { Seeded, FromCheckpoint };

class Model {
 public:
  Model(const ModelConfig& cfg, Backend& backend, Communicator& comm,
        ParallelMode mode = ParallelMode::Owt, ParamInit init = ParamInit::Seeded);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  Network& network() { return net_; }
  ParamStore& store() { return store_; }
  HybridStep& stepper() { return stepper_; }

  // One optimizer step over the global batch: forward and backward (HybridStep::train), then
  // SGD at learning rate `lr` — on the model-parallel stage after every block when the step
  // updates per block, on everything else after the step. x: this worker's rows; labels
  // (device) and labels_host: the whole global batch. Waits for the device.
  EvalCounts train_step(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                        const BatchRows& rows, int64_t step, double lr);

 private:
  Backend& backend_;
  uint64_t seed_;
  Network net_;
  ParamStore store_;
  HybridStep stepper_;
  SgdOptimizer sgd_;
};

}  // namespace owt
