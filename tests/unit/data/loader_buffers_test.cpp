// BatchLoader::next and its host buffers: next() hands over the bytes load() copies (prefetched,
// on demand, partial batches); buffers come from LoaderSpec::host_buffers and are recycled (a
// bounded number over many batches, out-of-order requests too); a buffer is refilled only
// after wait_unused(), i.e. never while an upload from it may still run.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "owt/data/loader.h"
#include "support/pattern_dataset.h"

namespace owt {
namespace {

using test::PatternDataset;  // (3, 6, 6) images filled from the example index

TransformSpec augment() { return test::pattern_augment(); }

// A host buffer that plays an asynchronous upload: upload() marks it read by a copy in flight
// and remembers its bytes; wait_unused() lets the "copy" run a little longer, checks that
// nothing wrote the buffer meanwhile, and ends it.
struct UploadLog {
  int allocations = 0, waits = 0, written_during_upload = 0;
};

class FakeAsyncBuffer final : public HostBuffer {
 public:
  FakeAsyncBuffer(size_t bytes, UploadLog& log) : HostBuffer(std::malloc(bytes), bytes), log_(log) {}
  ~FakeAsyncBuffer() override { std::free(data()); }

  void upload() {
    in_flight_ = true;
    const char* p = static_cast<const char*>(data());
    snapshot_.assign(p, p + bytes());
  }
  bool in_flight() const { return in_flight_; }
  void wait_unused() override {
    ++log_.waits;
    if (!in_flight_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // decode threads would write now
    if (std::memcmp(snapshot_.data(), data(), bytes()) != 0) ++log_.written_during_upload;
    in_flight_ = false;
  }

 private:
  UploadLog& log_;
  bool in_flight_ = false;
  std::vector<char> snapshot_;
};

LoaderSpec spec_with(int prefetch, int threads) {
  LoaderSpec s;
  s.batch = 8;
  s.prefetch = prefetch;
  s.threads = threads;
  s.seed = 3;
  return s;
}

using Copied = test::CopiedBatch;
constexpr auto via_load = test::load_copy;

void expect_same(const LoadedBatch& got, const Copied& want, int64_t numel, const char* what) {
  ASSERT_EQ(got.rows, static_cast<int64_t>(want.labels.size())) << what;
  ASSERT_GE(got.images.bytes(), want.x.size() * sizeof(float)) << what;
  EXPECT_EQ(std::memcmp(got.images.data(), want.x.data(), got.rows * numel * sizeof(float)), 0) << what;
  EXPECT_TRUE(std::equal(want.labels.begin(), want.labels.end(), got.labels)) << what;
}

TEST(LoaderBuffers, NextHandsOverTheBytesLoadCopies) {
  PatternDataset data(100);
  Transform t(augment(), data.example_shape(), 4);
  const int64_t numel = t.output_shape().numel();
  for (int prefetch : {0, 2}) {
    BatchLoader by_next(data, t, spec_with(prefetch, 2)), by_load(data, t, spec_with(prefetch, 2));
    for (int64_t epoch = 1; epoch <= 2; ++epoch)  // across the epoch boundary
      for (int64_t i = 0; i < by_next.batches_per_epoch(); ++i)
        expect_same(by_next.next(epoch, i), via_load(by_load, epoch, i, numel), numel, "in order");
    // Out of order (decoded on demand into a loader buffer), then in order again.
    for (auto [epoch, index] : {std::pair<int64_t, int64_t>{7, 3}, {1, 0}, {1, 1}, {1, 2}})
      expect_same(by_next.next(epoch, index), via_load(by_load, epoch, index, numel), numel, "jump");
  }
  // A final partial batch (30 = 3 x 8 + 6), evaluation style, twice around.
  PatternDataset small(30);
  LoaderSpec eval = spec_with(2, 2);
  eval.shuffle = eval.train = eval.drop_last = false;
  BatchLoader by_next(small, t, eval), by_load(small, t, eval);
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t i = 0; i < by_next.batches_per_epoch(); ++i)
      expect_same(by_next.next(0, i), via_load(by_load, 0, i, numel), numel, "eval");
  EXPECT_EQ(by_next.next(0, 3).rows, 6);
}

TEST(LoaderBuffers, ComeFromTheGivenAllocatorAndAreRecycled) {
  PatternDataset data(100);
  Transform t(augment(), data.example_shape(), 4);
  const size_t batch_bytes = 8 * t.output_shape().numel() * sizeof(float);
  UploadLog log;
  std::vector<const HostBuffer*> made;
  LoaderSpec s = spec_with(2, 2);
  s.host_buffers = [&](size_t bytes) {
    EXPECT_EQ(bytes, batch_bytes);
    ++log.allocations;
    auto buf = std::make_shared<FakeAsyncBuffer>(bytes, log);
    made.push_back(buf.get());
    return buf;
  };
  BatchLoader loader(data, t, s);
  for (int64_t epoch = 1; epoch <= 3; ++epoch)
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
      const LoadedBatch b = loader.next(epoch, i);
      EXPECT_NE(std::find(made.begin(), made.end(), &b.images), made.end()) << "not from the allocator";
    }
  for (auto [epoch, index] : {std::pair<int64_t, int64_t>{9, 5}, {2, 0}, {9, 7}, {9, 8}})
    loader.next(epoch, index);  // jumps: the dropped queue's buffers are reused too
  // Two queued and one handed over, for 3 x 12 + 4 batches.
  EXPECT_EQ(log.allocations, 3);
}

TEST(LoaderBuffers, RefillsABufferOnlyAfterItsUploadEnded) {
  PatternDataset data(100);
  Transform t(augment(), data.example_shape(), 4);
  for (int prefetch : {0, 1, 3}) {
    UploadLog log;
    LoaderSpec s = spec_with(prefetch, 3);
    s.host_buffers = [&](size_t bytes) { return std::make_shared<FakeAsyncBuffer>(bytes, log); };
    BatchLoader loader(data, t, s);
    int uploads = 0;
    auto step = [&](int64_t epoch, int64_t index) {
      const LoadedBatch b = loader.next(epoch, index);
      auto& buf = dynamic_cast<FakeAsyncBuffer&>(b.images);
      EXPECT_FALSE(buf.in_flight()) << "handed over while an upload still reads it";
      buf.upload();  // the trainer queues the copy and returns at once
      ++uploads;
    };
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) step(1, i);
    step(4, 2);  // a jump
    step(4, 3);
    EXPECT_EQ(log.written_during_upload, 0) << "prefetch " << prefetch;
    EXPECT_GE(log.waits, uploads - 1) << "prefetch " << prefetch;  // every reuse waits
  }
}

}  // namespace
}  // namespace owt
