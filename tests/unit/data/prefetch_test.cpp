// Prefetching tests: batches from the prefetch queue equal synchronous ones (any depth, any
// thread count, in order, out of order, across epochs); wait time is measured.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "owt/data/loader.h"
#include "support/pattern_dataset.h"

namespace owt {
namespace {

// (3, 6, 6) images filled from the example index; reading takes `delay_us` (a slow disk).
using SlowDataset = test::PatternDataset;

using Batch = test::CopiedBatch;
constexpr auto get = test::load_copy;  // load() into a fresh Batch

TransformSpec augment() { return test::pattern_augment(); }

TEST(Prefetch, GivesExactlyTheSynchronousBatches) {
  SlowDataset data(100, 0);
  Transform t(augment(), data.example_shape(), 4);
  const int64_t numel = t.output_shape().numel();
  LoaderSpec sync_spec;
  sync_spec.batch = 8;
  sync_spec.prefetch = 0;
  BatchLoader sync(data, t, sync_spec);
  for (int depth : {1, 3}) {
    for (int threads : {1, 4}) {
      LoaderSpec s = sync_spec;
      s.prefetch = depth;
      s.threads = threads;
      BatchLoader pre(data, t, s);
      for (int64_t epoch = 1; epoch <= 2; ++epoch)  // across the epoch boundary
        for (int64_t i = 0; i < pre.batches_per_epoch(); ++i)
          ASSERT_EQ(get(pre, epoch, i, numel), get(sync, epoch, i, numel))
              << "depth " << depth << " threads " << threads << " epoch " << epoch << " batch " << i;
      // Out of order requests (a restart, an eval) are served too.
      EXPECT_EQ(get(pre, 7, 3, numel), get(sync, 7, 3, numel));
      EXPECT_EQ(get(pre, 1, 0, numel), get(sync, 1, 0, numel));
      EXPECT_EQ(get(pre, 1, 1, numel), get(sync, 1, 1, numel));
    }
  }
}

TEST(Prefetch, HidesSlowReadsAndReportsTheWait) {
  SlowDataset data(64, 2000);  // 2 ms per example: 16 ms per batch on one thread
  Transform t(TransformSpec{}, data.example_shape(), 0);
  const int64_t numel = t.output_shape().numel();
  LoaderSpec s;
  s.batch = 8;
  s.prefetch = 0;
  BatchLoader sync(data, t, s);
  s.prefetch = 2;
  BatchLoader pre(data, t, s);
  for (BatchLoader* l : {&sync, &pre})
    for (int64_t i = 0; i < l->batches_per_epoch(); ++i) {
      get(*l, 0, i, numel);
      std::this_thread::sleep_for(std::chrono::milliseconds(25));  // the trainer computing
    }
  EXPECT_GT(sync.wait_seconds(), 8 * 0.014);
  EXPECT_LT(pre.wait_seconds(), sync.wait_seconds() / 2) << "prefetching did not overlap";
  EXPECT_EQ(pre.skipped(), 0);
}

TEST(Prefetch, EvalLoaderServesRepeatedPassesFromTheQueue) {
  SlowDataset data(30, 0);
  Transform t(TransformSpec{}, data.example_shape(), 0);
  const int64_t numel = t.output_shape().numel();
  LoaderSpec s;
  s.batch = 8;
  s.shuffle = s.train = s.drop_last = false;
  BatchLoader eval(data, t, s);
  std::vector<Batch> first;
  for (int64_t i = 0; i < eval.batches_per_epoch(); ++i) first.push_back(get(eval, 0, i, numel));
  EXPECT_EQ(first.back().labels.size(), 6u);  // 30 = 3 x 8 + 6
  for (int64_t i = 0; i < eval.batches_per_epoch(); ++i) EXPECT_EQ(get(eval, 0, i, numel), first[i]);
}

}  // namespace
}  // namespace owt
