// GradBuckets: sums the replicated gradients over workers in fixed-size buckets of the
// contiguous gradient buffer, each all-reduce launched as soon as backward has filled it.
#pragma once
#include <memory>
#include <vector>

#include "owt/comm/communicator.h"
#include "owt/nn/param_store.h"

namespace owt {

// The bucket size: PyTorch DDP's default, large enough that each all-reduce runs near the
// link's bandwidth. The step-time model (step_time_model.h) buckets the same way.
constexpr size_t kGradBucketBytes = size_t{25} << 20;

class GradBuckets {
 public:
  GradBuckets(const ParamStore& store, Communicator& comm, size_t bucket_bytes = kGradBucketBytes);
  // Marks `p`'s gradient final for this step; launches every bucket that is now complete.
  void ready(const Param* p);
  // Launches what is left and waits for every bucket.
  void finish();

 private:
  void launch_until(size_t end);
  const ParamStore& store_;
  Communicator& comm_;
  size_t bucket_elems_;
  size_t ready_end_ = 0;     // summed buffer [0, ready_end_) holds final gradients
  size_t launched_end_ = 0;  // [0, launched_end_) has an all-reduce in flight or done
  std::vector<std::unique_ptr<CommHandle>> inflight_;
};

}  // namespace owt
