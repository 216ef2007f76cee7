// The MPI communicator: non-blocking MPI collectives on float32 host buffers, one process
// per worker, over a private duplicate of MPI_COMM_WORLD; and MpiSession (init/finalize).
// Counting convention and Dettmers' arithmetic: include/owt/comm/mpi_communicator.h.
// The guard keeps a non-MPI build from compiling this file if a recursive glob picks it up.
#ifdef OWT_HAVE_MPI
#include "owt/comm/mpi_communicator.h"

// C API only: keep Open MPI / MPICH from dragging in their deprecated C++ bindings.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "owt/core/error.h"

// Checks an MPI call; on failure throws owt::Error with the call, file, line and MPI's text.
#define OWT_MPI_CHECK(call)                                              \
  do {                                                                   \
    const int owt_mpi_rc_ = (call);                                      \
    if (owt_mpi_rc_ != MPI_SUCCESS)                                      \
      ::owt::throw_mpi_error(owt_mpi_rc_, #call, __FILE__, __LINE__);    \
  } while (0)

namespace owt {
namespace {

[[noreturn]] void throw_mpi_error(int rc, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
    std::snprintf(text, sizeof text, "code %d", rc);
  throw Error(cat("MPI error in ", call, " at ", file, ":", line, ": ", text));
}

int to_int(size_t n, const char* op) {
  if (n > static_cast<size_t>(INT_MAX))
    throw Error(cat(op, ": ", n, " elements exceed the MPI count limit (INT_MAX); "
                    "split the buffer"));
  return static_cast<int>(n);
}

// One collective in flight. Owns the request and the count/displacement arrays, which MPI
// reads until completion.
class MpiHandle : public CommHandle {
 public:
  MpiHandle() = default;
  MpiHandle(std::vector<int> counts, std::vector<int> displs)
      : counts_(std::move(counts)), displs_(std::move(displs)) {}
  ~MpiHandle() override {  // waits if nobody did; never throws
    int finalized = 1;
    if (request_ != MPI_REQUEST_NULL && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized)
      MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    if (request_ != MPI_REQUEST_NULL) OWT_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE));
  }
  bool test() override {
    int done = 1;
    if (request_ != MPI_REQUEST_NULL) OWT_MPI_CHECK(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
    return done != 0;
  }
  MPI_Request* request() { return &request_; }
  const int* counts() const { return counts_.data(); }
  const int* displs() const { return displs_.data(); }

 private:
  MPI_Request request_ = MPI_REQUEST_NULL;
  std::vector<int> counts_;
  std::vector<int> displs_;
};

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(std::shared_ptr<MpiSession> session) : session_(std::move(session)) {
    int initialized = 0;
    OWT_MPI_CHECK(MPI_Initialized(&initialized));
    if (!initialized)
      throw Error("MPI communicator: MPI is not initialised (create an MpiSession first)");
    OWT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    OWT_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    OWT_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    OWT_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  }

  ~MpiCommunicator() override {
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  std::unique_ptr<CommHandle> all_reduce_async(float* buf, size_t n) override {
    auto h = std::make_unique<MpiHandle>();
    OWT_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, to_int(n, "all_reduce"), MPI_FLOAT, MPI_SUM,
                                 comm_, h->request()));
    // As a reduce-scatter plus an all-gather over owt's shards of n (header comment).
    if (size_ > 1) count(CommOp::AllReduce, 2 * (n - shard_counts(n, size_)[rank_]));
    return h;
  }

  std::unique_ptr<CommHandle> all_gather_async(const float* send, float* recv,
                                               const std::vector<size_t>& counts) override {
    auto h = make_varcount_handle(counts, "all_gather");
    const int mine = h->counts()[rank_];
    // send may already sit in its place in recv: that is MPI_IN_PLACE.
    const void* sendbuf = send == recv + h->displs()[rank_] ? MPI_IN_PLACE : send;
    OWT_MPI_CHECK(MPI_Iallgatherv(sendbuf, mine, MPI_FLOAT, recv, h->counts(), h->displs(),
                                  MPI_FLOAT, comm_, h->request()));
    count(CommOp::AllGather, others(counts));
    return h;
  }

  std::unique_ptr<CommHandle> reduce_scatter_async(const float* send, float* recv,
                                                   const std::vector<size_t>& counts) override {
    auto h = make_varcount_handle(counts, "reduce_scatter");
    // send == recv: the full input is in recv and the result lands at its start.
    const void* sendbuf = send == recv ? MPI_IN_PLACE : send;
    OWT_MPI_CHECK(MPI_Ireduce_scatter(sendbuf, recv, h->counts(), MPI_FLOAT, MPI_SUM, comm_,
                                      h->request()));
    count(CommOp::ReduceScatter, others(counts));
    return h;
  }

  std::unique_ptr<CommHandle> broadcast_async(float* buf, size_t n, int root) override {
    check_root(root, "broadcast");
    auto h = std::make_unique<MpiHandle>();
    OWT_MPI_CHECK(MPI_Ibcast(buf, to_int(n, "broadcast"), MPI_FLOAT, root, comm_, h->request()));
    if (rank_ != root) count(CommOp::Broadcast, n);  // received
    return h;
  }

  std::unique_ptr<CommHandle> reduce_async(float* buf, size_t n, int root) override {
    check_root(root, "reduce");
    auto h = std::make_unique<MpiHandle>();
    const int m = to_int(n, "reduce");
    if (rank_ == root) {
      OWT_MPI_CHECK(
          MPI_Ireduce(MPI_IN_PLACE, buf, m, MPI_FLOAT, MPI_SUM, root, comm_, h->request()));
    } else {
      OWT_MPI_CHECK(MPI_Ireduce(buf, nullptr, m, MPI_FLOAT, MPI_SUM, root, comm_, h->request()));
      count(CommOp::Reduce, n);  // sent
    }
    return h;
  }

  std::unique_ptr<CommHandle> send_async(const float* buf, size_t n, int dest) override {
    check_peer(dest, "send");
    auto h = std::make_unique<MpiHandle>();
    OWT_MPI_CHECK(MPI_Isend(buf, to_int(n, "send"), MPI_FLOAT, dest, kPointToPointTag, comm_,
                            h->request()));
    count(CommOp::Send, n);
    return h;
  }

  std::unique_ptr<CommHandle> recv_async(float* buf, size_t n, int source) override {
    check_peer(source, "recv");
    auto h = std::make_unique<MpiHandle>();
    OWT_MPI_CHECK(MPI_Irecv(buf, to_int(n, "recv"), MPI_FLOAT, source, kPointToPointTag, comm_,
                            h->request()));
    return h;
  }

  void barrier() override { OWT_MPI_CHECK(MPI_Barrier(comm_)); }

  [[noreturn]] void abort_all(const std::string& message, int exit_code) override {
    static std::atomic<bool> printed{false};
    if (!printed.exchange(true)) {
      if (size_ > 1)
        std::fprintf(stderr, "owt: rank %d: error: %s\n", rank_, message.c_str());
      else
        std::fprintf(stderr, "owt: error: %s\n", message.c_str());
      std::fflush(stderr);
    }
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  void check_root(int root, const char* op) const {
    if (root < 0 || root >= size_)
      throw Error(cat(op, ": root ", root, " out of range for ", size_, " ranks"));
  }
  void check_peer(int peer, const char* op) const {
    if (peer < 0 || peer >= size_ || peer == rank_)
      throw Error(cat(op, ": peer ", peer, " out of range for ", size_, " ranks (or this rank)"));
  }

  // Point-to-point messages have their own tag (collectives match separately anyway).
  static constexpr int kPointToPointTag = 17;

  std::unique_ptr<MpiHandle> make_varcount_handle(const std::vector<size_t>& counts,
                                                  const char* op) const {
    if (counts.size() != static_cast<size_t>(size_))
      throw Error(cat(op, ": counts has ", counts.size(), " entries, expected ", size_,
                      " (one per rank)"));
    std::vector<int> c(size_), d(size_);
    size_t offset = 0;
    for (int r = 0; r < size_; ++r) {
      c[r] = to_int(counts[r], op);
      d[r] = to_int(offset, op);
      offset += counts[r];
    }
    to_int(offset, op);
    return std::make_unique<MpiHandle>(std::move(c), std::move(d));
  }

  uint64_t others(const std::vector<size_t>& counts) const {
    uint64_t total = 0;
    for (int r = 0; r < size_; ++r)
      if (r != rank_) total += counts[r];
    return total;
  }

  std::shared_ptr<MpiSession> session_;  // declared first: outlives comm_
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

MpiSession::MpiSession() {
  int initialized = 0, finalized = 0;
  OWT_MPI_CHECK(MPI_Initialized(&initialized));
  OWT_MPI_CHECK(MPI_Finalized(&finalized));
  if (finalized) throw Error("MpiSession: MPI was already finalised in this process");
  if (!initialized) {
    int provided = MPI_THREAD_SINGLE;
    OWT_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw Error(cat("MpiSession: the MPI library provides thread level ", provided,
                      ", owt needs MPI_THREAD_FUNNELED or better"));
    }
    owns_ = true;
  }
  OWT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  OWT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
}

MpiSession::~MpiSession() {
  if (!owns_) return;
  int finalized = 1;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::unique_ptr<Communicator> make_mpi_communicator(std::shared_ptr<MpiSession> session) {
  return std::make_unique<MpiCommunicator>(std::move(session));
}

}  // namespace owt
#endif  // OWT_HAVE_MPI
