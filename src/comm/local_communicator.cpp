// The K = 1 communicator: rank 0 of 1; every collective is the identity or a copy, every
// handle is complete when returned, and the counters stay 0 because nothing is sent.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "owt/comm/communicator.h"
#include "owt/core/error.h"

namespace owt {
namespace {

class DoneHandle : public CommHandle {
 public:
  void wait() override {}
  bool test() override { return true; }
};

std::unique_ptr<CommHandle> done() { return std::make_unique<DoneHandle>(); }

void check_counts(const std::vector<size_t>& counts, const char* op) {
  if (counts.size() != 1)
    throw Error(cat(op, ": counts has ", counts.size(), " entries, expected 1 (one per rank)"));
}

void check_root(int root, const char* op) {
  if (root != 0) throw Error(cat(op, ": root ", root, " out of range for 1 rank"));
}

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "local"; }

  std::unique_ptr<CommHandle> all_reduce_async(float*, size_t) override { return done(); }

  std::unique_ptr<CommHandle> all_gather_async(const float* send, float* recv,
                                               const std::vector<size_t>& counts) override {
    check_counts(counts, "all_gather");
    if (send != recv) std::copy_n(send, counts[0], recv);
    return done();
  }

  std::unique_ptr<CommHandle> reduce_scatter_async(const float* send, float* recv,
                                                   const std::vector<size_t>& counts) override {
    check_counts(counts, "reduce_scatter");
    if (send != recv) std::copy_n(send, counts[0], recv);
    return done();
  }

  std::unique_ptr<CommHandle> broadcast_async(float*, size_t, int root) override {
    check_root(root, "broadcast");
    return done();
  }

  std::unique_ptr<CommHandle> reduce_async(float*, size_t, int root) override {
    check_root(root, "reduce");
    return done();
  }

  // There is no other rank to talk to.
  std::unique_ptr<CommHandle> send_async(const float*, size_t, int dest) override {
    throw Error(cat("send: peer ", dest, " out of range for 1 rank (no peer but itself)"));
  }
  std::unique_ptr<CommHandle> recv_async(float*, size_t, int source) override {
    throw Error(cat("recv: peer ", source, " out of range for 1 rank (no peer but itself)"));
  }

  void barrier() override {}

  [[noreturn]] void abort_all(const std::string& message, int exit_code) override {
    std::fprintf(stderr, "owt: error: %s\n", message.c_str());
    std::fflush(stderr);
    std::exit(exit_code);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace owt
