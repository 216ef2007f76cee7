// SgdOptimizer and LrSchedule. The update arithmetic itself is the shared sgd_one() that both
// backends run, so CPU tests cover the GPU's maths.
#include "owt/train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace owt {

void SgdOptimizer::step(const std::vector<Param*>& params, double lr, Backend& backend) const {
  for (Param* p : params) {
    if (p->frozen) continue;
    SgdStep s{static_cast<float>(lr * p->lr_mult), static_cast<float>(solver_.momentum),
              static_cast<float>(solver_.weight_decay * p->wd_mult), solver_.nesterov};
    backend.sgd_update(s, p->value.f32(), p->grad.f32(), p->state.f32(), p->value.numel());
  }
}

LrSchedule::LrSchedule(const SolverConfig& solver, int64_t steps_per_epoch, int64_t total_steps)
    : solver_(solver), steps_per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      total_steps_(std::max<int64_t>(1, total_steps)) {}

double LrSchedule::at(int64_t step) const {
  const ScheduleConfig& s = solver_.schedule;
  const double base = solver_.lr;
  const double warmup = s.warmup_epochs * steps_per_epoch_;
  if (step < warmup) return base * std::min(1.0, (step + 1) / warmup);
  if (s.type == "cosine") {
    double span = std::max(1.0, total_steps_ - warmup);
    double progress = std::min(1.0, (step - warmup) / span);
    return s.min_lr + (base - s.min_lr) * 0.5 * (1 + std::cos(M_PI * progress));
  }
  if (s.type == "step") {
    double epoch = static_cast<double>(step) / steps_per_epoch_;
    int passed = 0;
    for (double m : s.milestones) passed += epoch >= m;
    return base * std::pow(s.gamma, passed);
  }
  return base;
}

}  // namespace owt
