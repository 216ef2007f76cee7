// GradBuckets without mpirun: a fake two-worker communicator records every all-reduce (where in
// the summed gradient buffer, how many elements, whether it was waited on) and doubles its
// buffer when waited on, as a sum over two workers holding the same gradient would. Checks that
// backward-order ready() calls launch each bucket as soon as it is complete and only once, that
// finish() launches the tail and waits for everything, that every element of the summed buffer
// is all-reduced exactly once, and that the model-parallel stage's gradients are never touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/nn/init.h"
#include "owt/nn/param_store.h"
#include "owt/parallel/grad_buckets.h"

namespace owt::test {
namespace {

// ---- a fake communicator ----------------------------------------------------------------------

struct AllReduceCall {
  float* buf;
  size_t n;
  bool waited = false;
  int tests = 0;  // test() calls before the wait
};

class FakeComm : public Communicator {
 public:
  // `store`: all-reduces must lie in its summed gradient buffer (others are recorded, and
  // reported, but never touched).
  FakeComm(int size, const ParamStore& store)
      : size_(size), lo_(store.summed_grads()), hi_(store.summed_grads() + store.summed_size()) {}
  int rank() const override { return 0; }
  int size() const override { return size_; }
  std::string name() const override { return "fake"; }

  std::unique_ptr<CommHandle> all_reduce_async(float* buf, size_t n) override {
    EXPECT_TRUE(buf >= lo_ && buf + n <= hi_)
        << "an all-reduce of " << n << " elements at " << buf - lo_
        << " outside the summed gradient buffer (" << hi_ - lo_ << " elements)";
    calls.push_back(AllReduceCall{buf, n});
    return std::make_unique<Handle>(this, calls.size() - 1);
  }
  std::unique_ptr<CommHandle> all_gather_async(const float*, float*,
                                               const std::vector<size_t>&) override {
    return unexpected("all_gather");
  }
  std::unique_ptr<CommHandle> reduce_scatter_async(const float*, float*,
                                                   const std::vector<size_t>&) override {
    return unexpected("reduce_scatter");
  }
  std::unique_ptr<CommHandle> broadcast_async(float*, size_t, int) override {
    return unexpected("broadcast");
  }
  std::unique_ptr<CommHandle> reduce_async(float*, size_t, int) override {
    return unexpected("reduce");
  }
  std::unique_ptr<CommHandle> send_async(const float*, size_t, int) override {
    return unexpected("send");
  }
  std::unique_ptr<CommHandle> recv_async(float*, size_t, int) override {
    return unexpected("recv");
  }
  void barrier() override { ADD_FAILURE() << "GradBuckets called barrier"; }
  [[noreturn]] void abort_all(const std::string& message, int) override {
    throw std::runtime_error("abort_all: " + message);
  }

  std::vector<AllReduceCall> calls;

 private:
  // The sum over two workers with equal gradients: the buffer doubles when the caller waits.
  class Handle : public CommHandle {
   public:
    Handle(FakeComm* comm, size_t index) : comm_(comm), index_(index) {}
    void wait() override {
      AllReduceCall& c = comm_->calls[index_];
      EXPECT_FALSE(c.waited) << "all-reduce " << index_ << " waited on twice";
      if (c.waited) return;
      c.waited = true;
      for (size_t i = 0; i < c.n; ++i)
        if (c.buf + i >= comm_->lo_ && c.buf + i < comm_->hi_) c.buf[i] *= 2.f;
    }
    bool test() override {
      AllReduceCall& c = comm_->calls[index_];
      if (!c.waited) ++c.tests;
      return false;  // never completes by itself: only wait() finishes it
    }

   private:
    FakeComm* comm_;
    size_t index_;
  };
  struct NoOp : CommHandle {
    void wait() override {}
  };
  std::unique_ptr<CommHandle> unexpected(const char* op) {
    ADD_FAILURE() << "GradBuckets called " << op;
    return std::make_unique<NoOp>();
  }
  int size_;
  float* lo_;
  float* hi_;
};

// ---- params ---------------------------------------------------------------------------------

// Where a param's gradient is complete after backward. The one place that knows how a Param
// says so (its placement fields are being reworked).
enum class GradKind {
  Summed,    // replicated, computed on this worker's rows: summed over workers (bucketed)
  Complete,  // replicated, but the layer saw the whole global batch: not summed
  Shard,     // a model-parallel shard: not summed
};
Param make_param(const std::string& name, const Shape& shape, GradKind kind) {
  if (kind == GradKind::Shard) return make_sharded_param(name, shape, 0, 0, 2, InitSpec{});
  Param p = make_replicated_param(name, shape, InitSpec{});
  p.grad_placement = kind == GradKind::Summed ? Placement::partial() : Placement::replicate();
  return p;
}

// Every summed param below is a whole number of U = 64-float slots, so the store leaves no gap
// between them and the hand-worked ranges read in units of U.
constexpr size_t U = kParamAlignElements;

// A hybrid model in layer order (forward): the data-parallel stage's a.weight 6U, a.bias 3U,
// b.weight 5U, c.weight 7U (gradients summed), then the model-parallel stage's s.weight (a
// shard, 4 x 3 of 8 x 3) and r.bias 5 (replicated, complete on every worker). Summed buffer,
// last layer first, in units of U: c.weight [0, 7), b.weight [7, 12), a.bias [12, 15),
// a.weight [15, 21); the model stage's buffer: s.weight [0, 12) and its gap to 64, r.bias
// [64, 69).
struct Model {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  std::vector<Param> params;
  std::unique_ptr<ParamStore> store;

  Model() {
    const int64_t u = static_cast<int64_t>(U);
    params.push_back(make_param("a.weight", Shape{3, 2 * u}, GradKind::Summed));
    params.push_back(make_param("a.bias", Shape{3 * u}, GradKind::Summed));
    params.push_back(make_param("b.weight", Shape{5 * u}, GradKind::Summed));
    params.push_back(make_param("c.weight", Shape{7 * u}, GradKind::Summed));
    params.push_back(make_param("s.weight", Shape{8, 3}, GradKind::Shard));
    params.push_back(make_param("r.bias", Shape{5}, GradKind::Complete));
    std::vector<Param*> ptrs;
    for (Param& p : params) ptrs.push_back(&p);
    store = std::make_unique<ParamStore>(ptrs, *backend);
    fill_grads();
  }
  Param* get(const std::string& name) {
    for (Param& p : params)
      if (p.name == name) return &p;
    return nullptr;
  }
  // Distinct gradient values: element i of the summed buffer is 1 + i, of the model stage -(1 + i).
  void fill_grads() {
    for (size_t i = 0; i < store->summed_size(); ++i) store->summed_grads()[i] = 1.f + i;
    for (Param* p : store->model_stage())
      for (int64_t i = 0; i < p->grad.numel(); ++i) p->grad.f32()[i] = -1.f - i;
  }
  // Backward order: the last layer's params first, i.e. the params in reverse.
  std::vector<const Param*> backward_order() const {
    std::vector<const Param*> order;
    for (auto it = params.rbegin(); it != params.rend(); ++it) order.push_back(&*it);
    return order;
  }
  size_t offset(const AllReduceCall& c) const {
    return static_cast<size_t>(c.buf - store->summed_grads());
  }
};

// [begin, end) of the summed buffer.
struct Range {
  size_t begin, end;
  bool operator==(const Range& o) const { return begin == o.begin && end == o.end; }
};
std::ostream& operator<<(std::ostream& os, const Range& r) {
  return os << "[" << r.begin << ", " << r.end << ")";
}

std::vector<Range> ranges(const Model& m, const FakeComm& comm, size_t from = 0) {
  std::vector<Range> r;
  for (size_t i = from; i < comm.calls.size(); ++i)
    r.push_back({m.offset(comm.calls[i]), m.offset(comm.calls[i]) + comm.calls[i].n});
  return r;
}

// Every call lies inside the summed buffer and the calls cover it exactly once; the summed
// gradients doubled (each all-reduced once and waited on); the model stage is untouched.
void expect_summed_once(const Model& m, const FakeComm& comm) {
  const size_t n = m.store->summed_size();
  std::vector<int> covered(n, 0);
  for (const AllReduceCall& c : comm.calls) {
    ASSERT_GE(c.buf, m.store->summed_grads()) << "an all-reduce outside the summed buffer";
    ASSERT_LE(m.offset(c) + c.n, n) << "an all-reduce past the end of the summed buffer";
    EXPECT_GT(c.n, 0u) << "an empty all-reduce";
    EXPECT_TRUE(c.waited) << "all-reduce at " << m.offset(c) << " was never waited on";
    for (size_t i = m.offset(c); i < m.offset(c) + c.n; ++i) ++covered[i];
  }
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(covered[i], 1) << "element " << i << " of the summed buffer";
    EXPECT_EQ(m.store->summed_grads()[i], 2.f * (1.f + i)) << "element " << i;
  }
  for (const Param* p : m.store->model_stage())
    for (int64_t i = 0; i < p->grad.numel(); ++i)
      EXPECT_EQ(p->grad.f32()[i], -1.f - i) << p->name << " was touched";
}

// ---- tests ----------------------------------------------------------------------------------

TEST(GradBuckets, TheModelIsLaidOutAsTheTestsAssume) {
  Model m;
  EXPECT_TRUE(m.get("a.weight")->summed_over_workers());
  EXPECT_FALSE(m.get("s.weight")->summed_over_workers());
  EXPECT_FALSE(m.get("r.bias")->summed_over_workers());
  EXPECT_EQ(m.store->summed_size(), 21 * U);
  EXPECT_EQ(m.store->offset_of(m.get("c.weight")), 0u);
  EXPECT_EQ(m.store->offset_of(m.get("b.weight")), 7 * U);
  EXPECT_EQ(m.store->offset_of(m.get("a.bias")), 12 * U);
  EXPECT_EQ(m.store->offset_of(m.get("a.weight")), 15 * U);
  ASSERT_EQ(m.store->model_stage().size(), 2u);
  EXPECT_EQ(m.store->offset_of(m.get("s.weight")), 0u);
  EXPECT_EQ(m.store->offset_of(m.get("r.bias")), U);  // after s.weight's 12 and their gap
  EXPECT_EQ(m.get("s.weight")->grad.numel(), 12);
}

TEST(GradBuckets, LaunchesEachBucketAsSoonAsItIsComplete) {
  Model m;
  FakeComm comm(2, *m.store);
  GradBuckets buckets(*m.store, comm, 4 * U * sizeof(float));  // buckets of 4U elements

  buckets.ready(m.get("r.bias"));  // the model stage finishes first: nothing to sum
  buckets.ready(m.get("s.weight"));
  EXPECT_TRUE(comm.calls.empty());
  buckets.ready(m.get("c.weight"));  // [0, 7U) final: one whole bucket
  EXPECT_EQ(ranges(m, comm), (std::vector<Range>{{0 * U, 4 * U}}));
  buckets.ready(m.get("b.weight"));  // [0, 12U): two more
  EXPECT_EQ(ranges(m, comm, 1), (std::vector<Range>{{4 * U, 8 * U}, {8 * U, 12 * U}}));
  buckets.ready(m.get("r.bias"));  // the model stage again: nothing
  EXPECT_EQ(comm.calls.size(), 3u);
  buckets.ready(m.get("a.bias"));  // [0, 15U): no whole bucket yet
  EXPECT_EQ(comm.calls.size(), 3u);
  buckets.ready(m.get("a.weight"));  // [0, 21U): [12U, 16U) and [16U, 20U); [20U, 21U) waits
  EXPECT_EQ(ranges(m, comm, 3), (std::vector<Range>{{12 * U, 16 * U}, {16 * U, 20 * U}}));

  // Nothing is waited on (nor its data changed) before finish; the buckets in flight are
  // given a chance to progress (test()) while backward goes on.
  for (const AllReduceCall& c : comm.calls) EXPECT_FALSE(c.waited);
  EXPECT_EQ(m.store->summed_grads()[0], 1.f);
  EXPECT_GT(comm.calls[0].tests, 0);
  EXPECT_GT(comm.calls[1].tests, 0);

  buckets.finish();  // the tail, then waits for all
  EXPECT_EQ(ranges(m, comm, 5), (std::vector<Range>{{20 * U, 21 * U}}));
  expect_summed_once(m, comm);
}

TEST(GradBuckets, ABucketLaunchesOnlyOnce) {
  Model m;
  FakeComm comm(2, *m.store);
  GradBuckets buckets(*m.store, comm, 4 * U * sizeof(float));
  buckets.ready(m.get("c.weight"));
  buckets.ready(m.get("c.weight"));  // again: nothing new
  EXPECT_EQ(comm.calls.size(), 1u);
  buckets.ready(m.get("b.weight"));
  EXPECT_EQ(comm.calls.size(), 3u);
  buckets.ready(m.get("c.weight"));  // an earlier param after a later one: nothing new
  buckets.ready(m.get("b.weight"));
  EXPECT_EQ(comm.calls.size(), 3u);
  for (const Param* p : m.backward_order()) buckets.ready(p);
  for (const Param* p : m.backward_order()) buckets.ready(p);
  EXPECT_EQ(comm.calls.size(), 5u);
  buckets.finish();
  EXPECT_EQ(comm.calls.size(), 6u);
  expect_summed_once(m, comm);
}

TEST(GradBuckets, FinishLaunchesTheRemainderAndWaits) {
  Model m;
  FakeComm comm(2, *m.store);
  GradBuckets buckets(*m.store, comm, 4 * U * sizeof(float));
  // Only the last layer reported: finish sums the rest of the buffer in buckets.
  buckets.ready(m.get("c.weight"));
  buckets.finish();
  EXPECT_EQ(ranges(m, comm),
            (std::vector<Range>{{0 * U, 4 * U}, {4 * U, 8 * U}, {8 * U, 12 * U},
                                {12 * U, 16 * U}, {16 * U, 20 * U}, {20 * U, 21 * U}}));
  expect_summed_once(m, comm);
}

TEST(GradBuckets, TheModelStageIsNeverTouched) {
  Model m;
  FakeComm comm(2, *m.store);
  GradBuckets buckets(*m.store, comm, 1);  // buckets of one element: any end would launch
  for (const Param* p : m.store->model_stage()) buckets.ready(p);
  EXPECT_TRUE(comm.calls.empty()) << "a param whose gradient is not summed launched a bucket";
  buckets.finish();  // finish sums the summed buffer only
  EXPECT_EQ(comm.calls.size(), 21 * U);
  expect_summed_once(m, comm);
}

TEST(GradBuckets, FinishAloneSumsEverything) {
  Model m;
  FakeComm comm(2, *m.store);
  GradBuckets buckets(*m.store, comm);  // the default 25 MB: one bucket
  for (const Param* p : m.backward_order()) buckets.ready(p);
  EXPECT_TRUE(comm.calls.empty()) << "a bucket launched before it was full";
  buckets.finish();
  EXPECT_EQ(ranges(m, comm), (std::vector<Range>{{0 * U, 21 * U}}));
  expect_summed_once(m, comm);
}

TEST(GradBuckets, BucketsSmallerThanOneParam) {
  {
    Model m;
    FakeComm comm(2, *m.store);
    GradBuckets buckets(*m.store, comm, 3 * U * sizeof(float));
    buckets.ready(m.get("c.weight"));  // 7U elements: two buckets of 3U, [6U, 7U) waits
    EXPECT_EQ(ranges(m, comm), (std::vector<Range>{{0 * U, 3 * U}, {3 * U, 6 * U}}));
    buckets.ready(m.get("b.weight"));  // up to 12U
    EXPECT_EQ(ranges(m, comm, 2), (std::vector<Range>{{6 * U, 9 * U}, {9 * U, 12 * U}}));
    buckets.ready(m.get("a.bias"));  // up to 15U
    EXPECT_EQ(ranges(m, comm, 4), (std::vector<Range>{{12 * U, 15 * U}}));
    buckets.ready(m.get("a.weight"));  // up to 21U
    EXPECT_EQ(ranges(m, comm, 5), (std::vector<Range>{{15 * U, 18 * U}, {18 * U, 21 * U}}));
    buckets.finish();  // nothing left
    EXPECT_EQ(comm.calls.size(), 7u);
    expect_summed_once(m, comm);
  }
  {
    // Fewer bytes than one float: buckets of one element.
    Model m;
    FakeComm comm(2, *m.store);
    GradBuckets buckets(*m.store, comm, 1);
    buckets.ready(m.get("c.weight"));
    EXPECT_EQ(comm.calls.size(), 7 * U);
    for (size_t i = 0; i < comm.calls.size(); ++i) {
      EXPECT_EQ(m.offset(comm.calls[i]), i);
      EXPECT_EQ(comm.calls[i].n, 1u);
    }
    for (const Param* p : m.backward_order()) buckets.ready(p);
    EXPECT_EQ(comm.calls.size(), 21 * U);
    buckets.finish();
    EXPECT_EQ(comm.calls.size(), 21 * U);
    expect_summed_once(m, comm);
  }
}

// For every bucket size: after each ready() in backward order, the launched buckets are whole,
// lie in the final prefix of the buffer, and leave less than one bucket of it unlaunched.
TEST(GradBuckets, EveryBucketSizeInBackwardOrder) {
  for (size_t elems = 1; elems <= 25; ++elems) {
    SCOPED_TRACE("bucket of " + std::to_string(elems) + " elements");
    Model m;
    FakeComm comm(2, *m.store);
    GradBuckets buckets(*m.store, comm, elems * sizeof(float));
    size_t final_end = 0;  // [0, final_end) of the summed buffer holds final gradients
    for (const Param* p : m.backward_order()) {
      buckets.ready(p);
      if (p->summed_over_workers())
        final_end = m.store->offset_of(p) + static_cast<size_t>(p->stored_numel());
      size_t launched_end = 0;
      for (const AllReduceCall& c : comm.calls) {
        EXPECT_EQ(m.offset(c), launched_end) << "buckets launch in buffer order, back to back";
        EXPECT_EQ(c.n, elems) << "ready() launched a partial bucket";
        launched_end = m.offset(c) + c.n;
      }
      EXPECT_LE(launched_end, final_end) << "launched gradients that are not final yet";
      EXPECT_LT(final_end - launched_end, elems) << "a complete bucket was not launched";
      for (const AllReduceCall& c : comm.calls) EXPECT_FALSE(c.waited);
    }
    EXPECT_EQ(final_end, m.store->summed_size());
    size_t before_finish = comm.calls.size();
    buckets.finish();
    EXPECT_LE(comm.calls.size() - before_finish, 1u);
    expect_summed_once(m, comm);
  }
}

// A param that does not fill its last 64-float slot: its gradient counts as final up to the end
// of the slot, so the zero gap goes out in the same buckets (ParamStore pads every param to 256
// bytes; the cost model counts the gaps the same way).
TEST(GradBuckets, AGapTravelsWithItsParam) {
  std::unique_ptr<Backend> backend = make_cpu_backend();
  Param x = make_param("x.weight", Shape{5}, GradKind::Summed);
  Param y = make_param("y.weight", Shape{7, 10}, GradKind::Summed);  // 70: two slots
  ParamStore store({&x, &y}, *backend);
  ASSERT_EQ(store.summed_size(), 3 * U);
  for (size_t i = 0; i < store.summed_size(); ++i) store.summed_grads()[i] = 1.f + i;
  FakeComm comm(2, store);
  GradBuckets buckets(store, comm, 32 * sizeof(float));
  buckets.ready(&y);  // [0, 128) final: four buckets, the gap [70, 128) with them
  ASSERT_EQ(comm.calls.size(), 4u);
  EXPECT_EQ(comm.calls.back().buf + comm.calls.back().n, store.summed_grads() + 2 * U);
  buckets.ready(&x);  // [128, 192): two more; x's gap [133, 192) included
  EXPECT_EQ(comm.calls.size(), 6u);
  buckets.finish();
  EXPECT_EQ(comm.calls.size(), 6u) << "nothing is left for finish";
  for (size_t i = 0; i < store.summed_size(); ++i)
    ASSERT_EQ(store.summed_grads()[i], 2.f * (1.f + i)) << "element " << i;
}

TEST(GradBuckets, StartsAfreshEachStep) {
  Model m;
  FakeComm comm(2, *m.store);
  GradBuckets buckets(*m.store, comm, 4 * U * sizeof(float));
  for (const Param* p : m.backward_order()) buckets.ready(p);
  buckets.finish();
  std::vector<Range> first = ranges(m, comm);
  m.fill_grads();
  comm.calls.clear();
  for (const Param* p : m.backward_order()) buckets.ready(p);
  buckets.finish();
  EXPECT_EQ(ranges(m, comm), first);
  expect_summed_once(m, comm);
}

TEST(GradBuckets, OneWorkerMovesNothing) {
  Model m;
  FakeComm comm(1, *m.store);
  GradBuckets buckets(*m.store, comm, 4 * U * sizeof(float));
  for (const Param* p : m.backward_order()) buckets.ready(p);
  buckets.finish();
  EXPECT_TRUE(comm.calls.empty());
  for (size_t i = 0; i < m.store->summed_size(); ++i)
    EXPECT_EQ(m.store->summed_grads()[i], 1.f + i);
}

}  // namespace
}  // namespace owt::test
