// SyntheticDataset (data.format: synthetic): shape from the spec, pixels in [0, 1], labels that
// cover the classes, keyed by seed and split, learnable (nearest prototype beats chance) but not
// trivial, the same batches for any K, threads or prefetch, and 2^24 classes without memory.
#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "owt/core/limits.h"
#include "owt/data/loader.h"
#include "owt/data/synthetic_dataset.h"
#include "support/expect_error.h"

namespace owt {
namespace {

SyntheticSpec spec_of(Shape shape, int64_t classes, int64_t train, int64_t test, uint64_t seed = 5) {
  SyntheticSpec s;
  s.shape = shape;
  s.classes = classes;
  s.train_examples = train;
  s.test_examples = test;
  s.seed = seed;
  return s;
}

std::vector<float> example(const Dataset& d, int64_t i) {
  std::vector<float> x(static_cast<size_t>(d.example_shape().numel()));
  d.read(i, x.data());
  return x;
}

double distance2(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t j = 0; j < a.size(); ++j) s += (a[j] - b[j]) * static_cast<double>(a[j] - b[j]);
  return s;
}

TEST(SyntheticDataset, ShapePixelRangeAndLabelsCoveringTheClasses) {
  auto train = open_synthetic_dataset(spec_of(Shape{2, 7, 9}, 13, 40, 6), "train");
  auto test = open_synthetic_dataset(spec_of(Shape{2, 7, 9}, 13, 40, 6), "test");
  EXPECT_EQ(train->size(), 40);
  EXPECT_EQ(test->size(), 6);
  EXPECT_EQ(train->example_shape(), (Shape{2, 7, 9}));
  EXPECT_EQ(train->classes(), 13);
  std::set<int32_t> seen;
  bool below_one = false, above_zero = false;
  for (int64_t i = 0; i < train->size(); ++i) {
    EXPECT_EQ(train->label(i), i % 13);
    seen.insert(train->label(i));
    for (float v : example(*train, i)) {
      ASSERT_GE(v, 0.f);
      ASSERT_LE(v, 1.f);
      below_one = below_one || v < 1.f;
      above_zero = above_zero || v > 0.f;
    }
  }
  EXPECT_TRUE(below_one && above_zero);
  EXPECT_EQ(seen.size(), 13u);  // every class once examples >= classes
  for (int64_t i = 0; i < test->size(); ++i) EXPECT_EQ(test->label(i), i);  // classes seen in training
  EXPECT_EQ(train->class_names().size(), 13u);
}

// class_frequency: zipf: P(k) = ln((k+2)/(k+1)) / ln(C+1), keyed by (seed, split, i), every
// label a class; the head of the distribution fills a visible share of each batch.
TEST(SyntheticDataset, ZipfLabelsFollowTheirLongTail) {
  SyntheticSpec s = spec_of(Shape{1, 4, 4}, 1000000, 200000, 1000);
  s.frequency = ClassFrequency::Zipf;
  auto train = open_synthetic_dataset(s, "train");
  std::vector<int64_t> count(4, 0);
  int64_t above_1000 = 0;
  for (int64_t i = 0; i < train->size(); ++i) {
    const int32_t k = train->label(i);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 1000000);
    if (k < 4) ++count[k];
    above_1000 += k >= 1000;
  }
  const double n = static_cast<double>(train->size()), log_c = std::log(1000001.0);
  for (int k = 0; k < 4; ++k) {
    const double p = std::log((k + 2.0) / (k + 1.0)) / log_c, sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(count[k], n * p, 5 * sd) << "class " << k;
  }
  // P(k >= 1000) = 1 - ln(1001) / ln(C + 1) = 0.5.
  EXPECT_NEAR(above_1000 / n, 1 - std::log(1001.0) / log_c, 0.01);
  // Keyed: the same labels when opened again, others for another seed or split.
  auto again = open_synthetic_dataset(s, "train"), test = open_synthetic_dataset(s, "test");
  s.seed = 6;
  auto other = open_synthetic_dataset(s, "train");
  int same_split = 0, same_seed = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(again->label(i), train->label(i));
    same_split += test->label(i) == train->label(i);
    same_seed += other->label(i) == train->label(i);
  }
  EXPECT_LT(same_split, 100);  // only the head's classes coincide by chance
  EXPECT_LT(same_seed, 100);
}

TEST(SyntheticDataset, KeyedBySeedAndSplit) {
  const SyntheticSpec s = spec_of(Shape{3, 8, 8}, 5, 20, 20);
  auto a = open_synthetic_dataset(s, "train"), again = open_synthetic_dataset(s, "train");
  auto test = open_synthetic_dataset(s, "test");
  SyntheticSpec other = s;
  other.seed = 6;
  auto b = open_synthetic_dataset(other, "train");
  for (int64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(example(*a, i), example(*again, i)) << i;  // a function of (seed, split, i) only
    EXPECT_NE(example(*a, i), example(*b, i)) << i;      // another seed, other pixels
    EXPECT_NE(example(*a, i), example(*test, i)) << i;   // train and test examples differ
    EXPECT_EQ(a->label(i), test->label(i));
  }
  EXPECT_NE(example(*a, 0), example(*a, 5));  // same class, other noise and shift
}

TEST(SyntheticDataset, WithoutNoiseOrShiftEveryExampleIsItsClassPrototype) {
  SyntheticSpec s = spec_of(Shape{1, 12, 12}, 4, 12, 4);
  s.noise = 0;
  s.shift = 0;
  auto train = open_synthetic_dataset(s, "train"), test = open_synthetic_dataset(s, "test");
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(example(*train, i), example(*train, i % 4)) << i;
    EXPECT_EQ(example(*train, i), example(*test, i % 4)) << i;  // prototypes are shared by splits
  }
  for (int64_t k = 1; k < 4; ++k) EXPECT_GT(distance2(example(*train, 0), example(*train, k)), 1.0);
  // Smooth: neighbouring pixels differ far less than pixels of two classes.
  const std::vector<float> p = example(*train, 0);
  double step = 0;
  for (int64_t y = 0; y < 12; ++y)
    for (int64_t x = 0; x + 1 < 12; ++x) step = std::max(step, std::abs(double(p[y * 12 + x + 1] - p[y * 12 + x])));
  EXPECT_LT(step, 0.26);
}

// Learnable but not trivial: the nearest prototype finds the class of most noisy, shifted
// examples (chance: 1 in 10), but not of all of them, and no example equals its prototype.
TEST(SyntheticDataset, NearestPrototypeBeatsChanceButIsNotPerfect) {
  const SyntheticSpec s = spec_of(Shape{1, 12, 12}, 10, 1000, 10);
  SyntheticSpec clean = s;
  clean.noise = 0;
  clean.shift = 0;
  auto data = open_synthetic_dataset(s, "train"), protos = open_synthetic_dataset(clean, "test");
  std::vector<std::vector<float>> proto;
  for (int64_t k = 0; k < 10; ++k) proto.push_back(example(*protos, k));
  int correct = 0;
  for (int64_t i = 0; i < data->size(); ++i) {
    const std::vector<float> x = example(*data, i);
    int best = 0;
    for (int k = 1; k < 10; ++k)
      if (distance2(x, proto[k]) < distance2(x, proto[best])) best = k;
    correct += best == data->label(i);
    EXPECT_GT(distance2(x, proto[data->label(i)]), 1.0) << i;
  }
  EXPECT_GT(correct, 500) << "nearest prototype: " << correct << " of 1000";
  EXPECT_LT(correct, 1000) << "every example is closest to its prototype: too easy";
}

TEST(SyntheticDataset, ReadIsThreadSafe) {
  auto data = open_synthetic_dataset(spec_of(Shape{3, 16, 16}, 100, 400, 1), "train");
  std::vector<std::vector<float>> serial, parallel(400);
  for (int64_t i = 0; i < 400; ++i) serial.push_back(example(*data, i));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int64_t i = t; i < 400; i += 4) parallel[i] = example(*data, i);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(parallel, serial);
}

// Through the BatchLoader: K workers with b rows each, any decode threads and prefetch depth,
// load the rows of one worker with K·b rows.
TEST(SyntheticDataset, SameBatchesForAnyWorkersThreadsAndPrefetch) {
  auto data = open_synthetic_dataset(spec_of(Shape{1, 6, 5}, 7, 90, 1), "train");
  TransformSpec flip;
  flip.flip = true;
  Transform tf(flip, data->example_shape(), 3);
  const int64_t pixels = 30;  // (1, 6, 5)
  auto load_all = [&](int workers, int threads, int prefetch) {
    std::vector<std::unique_ptr<BatchLoader>> ranks;
    for (int r = 0; r < workers; ++r) {
      LoaderSpec s;
      s.batch = 12 / workers;  // K·b = 12 rows per global batch
      s.rank = r;
      s.workers = workers;
      s.seed = 11;
      s.threads = threads;
      s.prefetch = prefetch;
      ranks.push_back(std::make_unique<BatchLoader>(*data, tf, s));
    }
    std::vector<float> x;
    std::vector<int32_t> labels;
    for (int64_t epoch = 0; epoch < 2; ++epoch)
      for (int64_t i = 0; i < ranks[0]->batches_per_epoch(); ++i)
        for (auto& l : ranks) {
          std::vector<float> part(static_cast<size_t>(l->local_rows(i) * pixels));
          std::vector<int32_t> part_labels(static_cast<size_t>(l->local_rows(i)));
          l->load(epoch, i, part.data(), part_labels.data());
          x.insert(x.end(), part.begin(), part.end());
          labels.insert(labels.end(), part_labels.begin(), part_labels.end());
        }
    return std::make_pair(x, labels);
  };
  const auto one = load_all(1, 1, 0);
  ASSERT_EQ(one.second.size(), 2u * 7 * 12);  // 90 examples: 7 full global batches of 12
  for (int workers : {2, 3, 4})
    for (int threads : {1, 3})
      for (int prefetch : {0, 2}) {
        const auto got = load_all(workers, threads, prefetch);
        EXPECT_EQ(got.first, one.first) << "K=" << workers << " threads " << threads << " prefetch " << prefetch;
        EXPECT_EQ(got.second, one.second);
      }
}

// A 2^24-class set (the most a model file may have) opens and reads without allocating
// anything per class: the heap grows by far less than one byte per class.
TEST(SyntheticDataset, MaxClassesOpenWithoutPerClassMemory) {
  const struct mallinfo2 before = mallinfo2();
  auto data = open_synthetic_dataset(spec_of(Shape{3, 32, 32}, limits::kClasses, 256000, 2048), "train");
  std::vector<float> x(3 * 32 * 32);
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{255999}}) {
    data->read(i, x.data());
    EXPECT_EQ(data->label(i), i);
  }
  const struct mallinfo2 after = mallinfo2();
  const size_t grown = (after.uordblks + after.hblkhd) - std::min(after.uordblks + after.hblkhd,
                                                                  before.uordblks + before.hblkhd);
  EXPECT_LT(grown, size_t{1} << 20) << "bytes allocated and still held";
  EXPECT_EQ(data->classes(), limits::kClasses);
  EXPECT_EQ(data->size(), 256000);
}

TEST(SyntheticDataset, BadSpecsAndSplitsAreErrors) {
  test::expect_error([] { open_synthetic_dataset(spec_of(Shape{1, 4, 4}, 3, 10, 10), "val"); },
                     {"split 'val'"});
  test::expect_error([] { open_synthetic_dataset(spec_of(Shape{4, 4}, 3, 10, 10), "train"); },
                     {"(C, H, W)"});
  test::expect_error([] { open_synthetic_dataset(spec_of(Shape{1, 4, 4}, 3, -1, 10), "train"); },
                     {"-1 train examples"});
  SyntheticSpec s = spec_of(Shape{1, 4, 4}, 3, 10, 10);
  s.noise = -0.5f;
  test::expect_error([&] { open_synthetic_dataset(s, "train"); }, {"noise"});
  // No files to open: open_dataset refuses the format and says where its examples come from.
  test::expect_error([] { open_dataset("synthetic", "/tmp", "train"); },
                     {"synthetic", "generated from the model file"});
}

}  // namespace
}  // namespace owt
