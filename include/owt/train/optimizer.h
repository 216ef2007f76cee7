// SGD with momentum (plain or Nesterov) and weight decay over a list of params (per-param
// lr_mult and wd_mult, frozen params skipped), and the learning-rate schedule (warm-up, step, cosine).
#pragma once
#include <cstdint>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/nn/param.h"
#include "owt/train/model_config.h"

namespace owt {

class SgdOptimizer {
 public:
  explicit SgdOptimizer(const SolverConfig& solver) : solver_(solver) {}
  // One update of every param in `params` (momentum state lives in Param::state).
  void step(const std::vector<Param*>& params, double lr, Backend& backend) const;

 private:
  SolverConfig solver_;
};

class LrSchedule {
 public:
  LrSchedule(const SolverConfig& solver, int64_t steps_per_epoch, int64_t total_steps);
  double at(int64_t step) const;  // learning rate of optimizer step `step` (0-based)

 private:
  SolverConfig solver_;
  int64_t steps_per_epoch_, total_steps_;
};

}  // namespace owt
