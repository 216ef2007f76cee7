// BatchLoader tests: the keyed permutation (a permutation, identical on every rank), the
// K-worker split of each global batch (union over ranks = the 1-worker batch, in order),
// the final partial batch, drop_last, threads, and loading from a real IDX data set.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "owt/core/error.h"
#include "owt/data/loader.h"
#include "support/idx_writer.h"
#include "support/temp_dir.h"

namespace owt {
namespace {

// Example i is (1, 1, 2) = {i, 1000 + i}, label i % 7: every row identifies its example.
class CountingDataset : public Dataset {
 public:
  explicit CountingDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  Shape example_shape() const override { return Shape{1, 1, 2}; }
  int classes() const override { return 7; }
  int32_t label(int64_t i) const override { return static_cast<int32_t>(i % 7); }
  void read(int64_t i, float* out) const override {
    out[0] = static_cast<float>(i);
    out[1] = static_cast<float>(1000 + i);
  }

 private:
  int64_t n_;
};

LoaderSpec spec_for(int64_t batch, int rank, int workers, bool drop_last, uint64_t seed = 9) {
  LoaderSpec s;
  s.batch = batch;
  s.rank = rank;
  s.workers = workers;
  s.drop_last = drop_last;
  s.seed = seed;
  return s;
}

struct Rows {
  std::vector<float> x;
  std::vector<int32_t> labels;
};

Rows load(BatchLoader& l, int64_t epoch, int64_t index) {
  Rows r;
  r.x.resize(l.local_rows(index) * 2);
  r.labels.resize(l.local_rows(index));
  l.load(epoch, index, r.x.data(), r.labels.data());
  return r;
}

TEST(BatchLoader, OrderIsAKeyedPermutationSharedByAllRanks) {
  CountingDataset data(1000);
  Transform t(TransformSpec{}, data.example_shape(), 0);
  BatchLoader one(data, t, spec_for(32, 0, 1, true));
  std::vector<int64_t> e0 = one.order(0), e1 = one.order(1);
  std::vector<int64_t> sorted = e0, iota(1000);
  std::iota(iota.begin(), iota.end(), int64_t{0});
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(e0, iota);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(one.order(0), e0);  // recomputed after epoch 1: same
  for (int workers = 2; workers <= 4; ++workers)
    for (int rank = 0; rank < workers; ++rank) {
      BatchLoader l(data, t, spec_for(7, rank, workers, false));
      EXPECT_EQ(l.order(1), e1) << rank << "/" << workers;
      EXPECT_EQ(l.order(0), e0) << rank << "/" << workers;
    }
  BatchLoader other_seed(data, t, spec_for(32, 0, 1, true, 10));
  EXPECT_NE(other_seed.order(0), e0);
  LoaderSpec plain = spec_for(32, 0, 1, true);
  plain.shuffle = false;
  BatchLoader sequential(data, t, plain);
  EXPECT_EQ(sequential.order(5), iota);
}

TEST(BatchLoader, WorkersTogetherLoadTheSingleWorkerBatch) {
  CountingDataset data(103);
  TransformSpec flip;
  flip.flip = true;  // keyed by example: must agree for any K
  Transform t(flip, data.example_shape(), 3);
  const int64_t b = 5;
  for (int k = 1; k <= 4; ++k) {
    BatchLoader whole(data, t, spec_for(k * b, 0, 1, false));
    std::vector<std::unique_ptr<BatchLoader>> ranks;  // a loader owns threads: not movable
    for (int r = 0; r < k; ++r)
      ranks.push_back(std::make_unique<BatchLoader>(data, t, spec_for(b, r, k, false)));
    ASSERT_EQ(whole.batches_per_epoch(), (103 + k * b - 1) / (k * b));
    for (int64_t epoch = 0; epoch < 2; ++epoch)
      for (int64_t i = 0; i < whole.batches_per_epoch(); ++i) {
        Rows expect = load(whole, epoch, i), got;
        for (int r = 0; r < k; ++r) {
          EXPECT_EQ(ranks[r]->global_row0(i), static_cast<int64_t>(got.labels.size()));
          Rows part = load(*ranks[r], epoch, i);
          got.x.insert(got.x.end(), part.x.begin(), part.x.end());
          got.labels.insert(got.labels.end(), part.labels.begin(), part.labels.end());
        }
        ASSERT_EQ(got.x, expect.x) << "K=" << k << " epoch " << epoch << " batch " << i;
        ASSERT_EQ(got.labels, expect.labels);
      }
  }
}

TEST(BatchLoader, RowsFollowTheEpochOrder) {
  CountingDataset data(50);
  Transform t(TransformSpec{}, data.example_shape(), 0);
  BatchLoader l(data, t, spec_for(4, 1, 3, true));
  const std::vector<int64_t> ord = l.order(2);
  Rows rows = load(l, 2, 3);  // global batch 3 = positions 36..47; rank 1 gets 40..43
  ASSERT_EQ(rows.labels.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(rows.x[2 * r], static_cast<float>(ord[40 + r]));
    EXPECT_EQ(rows.x[2 * r + 1], static_cast<float>(1000 + ord[40 + r]));
    EXPECT_EQ(rows.labels[r], ord[40 + r] % 7);
  }
}

TEST(BatchLoader, FinalPartialBatchIsSplitEvenly) {
  CountingDataset data(23);  // global batch 12: one full batch, then 11 rows
  Transform t(TransformSpec{}, data.example_shape(), 0);
  const int64_t sizes[] = {3, 4, 4}, starts[] = {0, 3, 7};
  for (int r = 0; r < 3; ++r) {
    BatchLoader l(data, t, spec_for(4, r, 3, false));
    ASSERT_EQ(l.batches_per_epoch(), 2);
    EXPECT_EQ(l.local_rows(0), 4);
    EXPECT_EQ(l.global_row0(0), 4 * r);
    EXPECT_EQ(l.local_rows(1), sizes[r]);
    EXPECT_EQ(l.global_row0(1), starts[r]);
    const std::vector<int64_t> ord = l.order(0);
    Rows rows = load(l, 0, 1);
    for (int64_t j = 0; j < sizes[r]; ++j) EXPECT_EQ(rows.x[2 * j], ord[12 + starts[r] + j]);
  }
}

TEST(BatchLoader, PartialBatchSmallerThanWorkerCount) {
  CountingDataset data(14);  // global batch 12, then 2 rows over 3 workers: 0, 1, 1
  Transform t(TransformSpec{}, data.example_shape(), 0);
  const int64_t sizes[] = {0, 1, 1};
  for (int r = 0; r < 3; ++r) {
    BatchLoader l(data, t, spec_for(4, r, 3, false));
    EXPECT_EQ(l.local_rows(1), sizes[r]);
    Rows rows = load(l, 0, 1);
    EXPECT_EQ(static_cast<int64_t>(rows.labels.size()), sizes[r]);
  }
}

TEST(BatchLoader, DropLastDropsOnlyAPartialBatch) {
  Transform t(TransformSpec{}, Shape{1, 1, 2}, 0);
  CountingDataset exact(24), ragged(23), tiny(5);
  EXPECT_EQ(BatchLoader(exact, t, spec_for(4, 0, 3, true)).batches_per_epoch(), 2);
  EXPECT_EQ(BatchLoader(exact, t, spec_for(4, 0, 3, false)).batches_per_epoch(), 2);
  EXPECT_EQ(BatchLoader(ragged, t, spec_for(4, 0, 3, true)).batches_per_epoch(), 1);
  EXPECT_EQ(BatchLoader(ragged, t, spec_for(4, 0, 3, false)).batches_per_epoch(), 2);
  EXPECT_EQ(BatchLoader(tiny, t, spec_for(4, 0, 3, true)).batches_per_epoch(), 0);
  EXPECT_EQ(BatchLoader(tiny, t, spec_for(4, 0, 3, false)).batches_per_epoch(), 1);
  BatchLoader dropping(ragged, t, spec_for(4, 0, 3, true));
  std::vector<float> x(8);
  std::vector<int32_t> labels(4);
  EXPECT_THROW(dropping.load(0, 1, x.data(), labels.data()), Error);
}

TEST(BatchLoader, ThreadCountDoesNotChangeTheBatch) {
  CountingDataset data(200);
  TransformSpec aug;
  aug.flip = true;
  Transform t(aug, data.example_shape(), 1);
  LoaderSpec s1 = spec_for(64, 1, 2, true), s4 = s1;
  s4.threads = 4;
  BatchLoader one(data, t, s1), four(data, t, s4);
  Rows a = load(one, 1, 0), b = load(four, 1, 0);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.labels, b.labels);
}

TEST(BatchLoader, RejectsBadSpec) {
  CountingDataset data(10);
  Transform t(TransformSpec{}, data.example_shape(), 0);
  EXPECT_THROW(BatchLoader(data, t, spec_for(4, 3, 3, true)), Error);
  EXPECT_THROW(BatchLoader(data, t, spec_for(0, 0, 1, true)), Error);
  LoaderSpec no_threads = spec_for(4, 0, 1, true);
  no_threads.threads = 0;
  EXPECT_THROW(BatchLoader(data, t, no_threads), Error);
}

TEST(BatchLoader, LoadsAnIdxDatasetWithNormalisation) {
  test::TempDir dir;
  test::write_idx_dataset(dir.path(), "train", 30, 6, 6, 3, 4, true);
  test::SyntheticIdx d = test::make_synthetic_idx(30, 6, 6, 3, 4);
  auto data = open_idx_dataset(dir.path(), "train");
  TransformSpec norm;
  norm.mean = {0.5f};
  norm.std = {0.25f};
  Transform t(norm, data->example_shape(), 0);
  LoaderSpec s = spec_for(8, 0, 1, false);
  s.shuffle = false;
  s.train = false;
  BatchLoader l(*data, t, s);
  ASSERT_EQ(l.batches_per_epoch(), 4);
  std::vector<float> x(6 * 36);
  std::vector<int32_t> labels(6);
  ASSERT_EQ(l.local_rows(3), 6);
  l.load(0, 3, x.data(), labels.data());
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(labels[r], d.labels[24 + r]);
    for (int k = 0; k < 36; ++k)
      ASSERT_EQ(x[r * 36 + k], (d.pixels[(24 + r) * 36 + k] / 255.0f - 0.5f) / 0.25f);
  }
}

}  // namespace
}  // namespace owt
