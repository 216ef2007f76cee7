// Test-only communicator: K workers as threads of one process, meeting at all_reduce and
// all_gather (what the layers' own collectives need: batchnorm's sums, the sharded loss).
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "owt/comm/communicator.h"

namespace owt::test {

// K threads meeting at collectives: every rank stages its input, all wait, each computes its
// result from the staged inputs, all wait again (so no one restages while another reads).
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), staged_(size) {}
  int size() const { return size_; }
  void stage(int rank, const float* data, size_t n) { staged_[rank].assign(data, data + n); }
  const std::vector<float>& staged(int rank) const { return staged_[rank]; }
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != generation; });
  }

 private:
  int size_;
  std::vector<std::vector<float>> staged_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

class DoneHandle : public CommHandle {
 public:
  void wait() override {}
  bool test() override { return true; }
};

// One rank of a ThreadGroup: all_reduce and all_gather, counted by calls; the other ops throw.
class ThreadComm : public Communicator {
 public:
  ThreadComm(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  std::string name() const override { return "threads"; }

  std::unique_ptr<CommHandle> all_reduce_async(float* buf, size_t n) override {
    reduce_calls.push_back(n);
    group_.stage(rank_, buf, n);
    group_.barrier();
    for (size_t i = 0; i < n; ++i) {
      float s = 0.f;
      for (int r = 0; r < size(); ++r) s += group_.staged(r).at(i);
      buf[i] = s;
    }
    group_.barrier();
    return std::make_unique<DoneHandle>();
  }
  std::unique_ptr<CommHandle> all_gather_async(const float* send, float* recv,
                                               const std::vector<size_t>& counts) override {
    ++gather_calls;
    group_.stage(rank_, send, counts.at(rank_));
    group_.barrier();
    for (int r = 0; r < size(); ++r) recv = std::copy(group_.staged(r).begin(), group_.staged(r).end(), recv);
    group_.barrier();
    return std::make_unique<DoneHandle>();
  }
  std::unique_ptr<CommHandle> reduce_scatter_async(const float*, float*,
                                                   const std::vector<size_t>&) override {
    throw std::logic_error("ThreadComm does not reduce-scatter");
  }
  std::unique_ptr<CommHandle> broadcast_async(float*, size_t, int) override {
    throw std::logic_error("ThreadComm does not broadcast");
  }
  std::unique_ptr<CommHandle> reduce_async(float*, size_t, int) override {
    throw std::logic_error("ThreadComm does not reduce");
  }
  std::unique_ptr<CommHandle> send_async(const float*, size_t, int) override {
    throw std::logic_error("ThreadComm does not send");
  }
  std::unique_ptr<CommHandle> recv_async(float*, size_t, int) override {
    throw std::logic_error("ThreadComm does not receive");
  }
  void barrier() override { group_.barrier(); }
  [[noreturn]] void abort_all(const std::string& message, int) override {
    throw std::runtime_error("abort_all: " + message);
  }

  std::vector<size_t> reduce_calls;  // elements of each all-reduce
  int gather_calls = 0;

 private:
  ThreadGroup& group_;
  int rank_;
};

}  // namespace owt::test
