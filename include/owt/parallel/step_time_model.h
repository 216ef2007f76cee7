// The step-time model behind `owt plan --profile --comm`: one worker's measured layer times
// scaled to the rows and shards each layer has at K workers, and the step's collectives timed
// by a measured calibration, laid on one compute stream and one link in the order HybridStep
// issues them. Only what the step runs asynchronously overlaps: the gradient buckets with the
// backward of earlier layers, the pipelined transition's blocks with the FC stage.
#pragma once
#include <cstdint>
#include <vector>

#include "owt/parallel/comm_fit.h"
#include "owt/parallel/network_spec.h"
#include "owt/parallel/plan.h"
#include "owt/parallel/step_profile.h"

namespace owt {

// One step on a timeline: a compute stream and a link that carries one collective at a time,
// first come first served. An asynchronous collective runs on the link while the caller
// computes, except for the share (1 - overlap) that moves only when the caller waits for it
// (MPI without a progress thread); that share is added at the wait.
class StepTimeline {
 public:
  explicit StepTimeline(double overlap) : overlap_(overlap) {}
  void compute(double seconds);
  // A collective the caller waits for at once: it starts when the link is free.
  void blocking(double seconds);
  // An asynchronous collective; the returned handle is for wait().
  size_t launch(double seconds);
  void wait(size_t handle);
  void wait_all();
  double now() const { return clock_; }
  double compute_seconds() const { return compute_; }
  double comm_seconds() const { return comm_; }  // every collective's own time, summed

 private:
  struct Pending {
    double link_end = 0, at_wait = 0;
    bool done = false;
  };
  double overlap_;
  double clock_ = 0, link_ = 0, compute_ = 0, comm_ = 0;
  std::vector<Pending> pending_;
};

struct StepPrediction {
  double seconds = 0;        // the step
  double compute = 0;        // of which compute (layers and the rest of the step)
  double comm = 0;           // every collective's own time, summed (some of it hidden)
  double exposed_comm() const { return seconds - compute; }
};

// The step of `spec` on `workers` workers with `batch` rows per worker under `mode` (the
// model file's transition and fc_update), from a one-worker profile of the same model and a
// calibration of the link (any worker count: CommCalibration::seconds rescales it).
StepPrediction predict_step(const NetworkSpec& spec, int workers, int64_t batch, ParallelMode mode,
                            const StepProfile& profile, const CommCalibration& comm);

}  // namespace owt
