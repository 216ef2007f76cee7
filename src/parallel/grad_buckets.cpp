// GradBuckets: backward finishes layers last-to-first and the replicated buffer is laid out in
// that order, so the final gradients always form a growing prefix of it.
#include "owt/parallel/grad_buckets.h"

#include <algorithm>

namespace owt {

GradBuckets::GradBuckets(const ParamStore& store, Communicator& comm, size_t bucket_bytes)
    : store_(store), comm_(comm), bucket_elems_(std::max<size_t>(1, bucket_bytes / sizeof(float))) {}

void GradBuckets::ready(const Param* p) {
  if (!p->summed_over_workers() || comm_.size() == 1) return;
  // Let the buckets already in flight move on while backward continues.
  for (auto& h : inflight_) h->test();
  size_t end = store_.offset_of(p) + p->stored_numel();  // with the zero gap after it
  ready_end_ = std::max(ready_end_, end);
  // Launch whole buckets only; the tail goes in finish().
  size_t whole = launched_end_ + (ready_end_ - launched_end_) / bucket_elems_ * bucket_elems_;
  launch_until(whole);
}

void GradBuckets::launch_until(size_t end) {
  while (launched_end_ < end) {
    size_t n = std::min(bucket_elems_, end - launched_end_);
    inflight_.push_back(comm_.all_reduce_async(store_.summed_grads() + launched_end_, n));
    launched_end_ += n;
  }
}

void GradBuckets::finish() {
  if (comm_.size() > 1) launch_until(store_.summed_size());
  for (auto& h : inflight_) h->wait();
  inflight_.clear();
  ready_end_ = launched_end_ = 0;
}

}  // namespace owt
