// Augmentation tests for the ImageNet pipeline: shorter-side resize (exact on constant images,
// shape and aspect), PCA lighting (a per-image RGB shift keyed by example), the 10 test views,
// and a folder pipeline deterministic for a seed and identical for any number of workers.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "owt/core/error.h"
#include "owt/data/image_codec.h"
#include "owt/data/loader.h"
#include "support/image_data.h"
#include "support/temp_dir.h"

namespace owt {
namespace {

Image ramp(int64_t h, int64_t w) {
  Image img;
  img.resize(3, h, w);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) img.pixels[(c * h + y) * w + x] = 0.1f * c + 0.5f * x / w + 0.3f * y / h;
  return img;
}

TEST(Augment, ResizeShorterSideKeepsAspectAndConstants) {
  TransformSpec spec;
  spec.resize = 10;
  Transform t(spec, Shape{3, 40, 60}, 1);
  EXPECT_EQ(t.output_shape(), (Shape{3, 10, 15}));
  Image flat;
  flat.resize(3, 40, 60);
  std::fill(flat.pixels.begin(), flat.pixels.end(), 0.25f);
  std::vector<float> out(3 * 10 * 15), scratch;
  t.apply(flat, out.data(), 0, 0, false, scratch);
  for (float v : out) ASSERT_NEAR(v, 0.25f, 1e-6f);
  // A ramp stays a ramp: monotone along x after shrinking 4x (antialiased, no aliasing).
  t.apply(ramp(40, 60), out.data(), 0, 0, false, scratch);
  for (int x = 1; x < 15; ++x) EXPECT_GT(out[5 * 15 + x], out[5 * 15 + x - 1]);
  EXPECT_NEAR(out[5 * 15 + 7], 0.5f * 30 / 60 + 0.3f * 20 / 40, 0.02f);
}

TEST(Augment, VariableSizesNeedACropAndSmallImagesAreBadExamples) {
  EXPECT_THROW(Transform(TransformSpec{}, Shape{3, 0, 0}, 1), Error);
  TransformSpec spec;
  spec.crop = 8;
  Transform t(spec, Shape{3, 0, 0}, 1);
  std::vector<float> out(3 * 8 * 8), scratch;
  EXPECT_THROW(t.apply(ramp(6, 20), out.data(), 0, 0, true, scratch), BadExample);
  spec.resize = 8;
  Transform scaled(spec, Shape{3, 0, 0}, 1);
  scaled.apply(ramp(6, 20), out.data(), 0, 0, true, scratch);  // 6x20 -> 8x27 then crop
}

TEST(Augment, LightingShiftsEachChannelByAKeyedAmount) {
  TransformSpec spec;
  spec.lighting = 0.1f;
  Transform t(spec, Shape{3, 4, 4}, 7);
  Image img = ramp(4, 4);
  std::vector<float> a(48), b(48), plain(48), scratch;
  t.apply(img, a.data(), 2, 5, true, scratch);
  t.apply(img, b.data(), 2, 5, true, scratch);
  t.apply(img, plain.data(), 2, 5, false, scratch);
  EXPECT_EQ(a, b);
  for (int c = 0; c < 3; ++c) {
    const float shift = a[c * 16] - plain[c * 16];
    EXPECT_NE(shift, 0.0f);
    EXPECT_LT(std::abs(shift), 0.2f);
    for (int p = 1; p < 16; ++p) EXPECT_NEAR(a[c * 16 + p] - plain[c * 16 + p], shift, 1e-6f);
  }
  t.apply(img, b.data(), 2, 6, true, scratch);
  EXPECT_NE(a, b) << "another example draws another shift";
  EXPECT_THROW(Transform(spec, Shape{1, 4, 4}, 7), Error);
}

TEST(Augment, TenViewsAreTheCornersCentreAndTheirMirrors) {
  TransformSpec spec;
  spec.crop = 2;
  spec.test_views = 10;
  Transform t(spec, Shape{3, 4, 5}, 1);
  Image img = ramp(4, 5);
  auto px = [&](int y, int x) { return img.pixels[y * 5 + x]; };  // channel 0
  std::vector<float> out(12), centre(12), scratch;
  const int corners[5][2] = {{0, 0}, {0, 3}, {2, 0}, {2, 3}, {1, 1}};
  for (int v = 0; v < 10; ++v) {
    t.apply_view(img, out.data(), v, scratch);
    const int y0 = corners[v % 5][0], x0 = corners[v % 5][1];
    const bool flip = v >= 5;
    EXPECT_EQ(out[0], px(y0, x0 + (flip ? 1 : 0))) << v;
    EXPECT_EQ(out[3], px(y0 + 1, x0 + (flip ? 0 : 1))) << v;
  }
  t.apply_view(img, out.data(), 4, scratch);
  t.apply(img, centre.data(), 0, 0, false, scratch);
  EXPECT_EQ(out, centre);
}

TEST(Augment, FolderPipelineIsDeterministicAndIdenticalForAnyWorkerCount) {
  if (!have_image_codec()) GTEST_SKIP() << "built without OpenCV";
  test::TempDir dir;
  test::write_image_folder(dir.path(), "train", test::make_rgb_images(24, 20, 26, 3, 1), "mixed");
  auto ds = open_dataset("folder", dir.path(), "train");
  TransformSpec spec;
  spec.resize = 12;
  spec.crop = 10;
  spec.random_crop = spec.flip = true;
  spec.lighting = 0.1f;
  spec.mean = {0.5f, 0.4f, 0.3f};
  spec.std = {0.2f};
  Transform t(spec, ds->example_shape(), 11);
  const int64_t numel = 3 * 10 * 10, b = 3;
  auto run = [&](int k, int threads) {
    std::vector<std::unique_ptr<BatchLoader>> ranks;
    for (int r = 0; r < k; ++r) {
      LoaderSpec s;
      s.batch = 12 / k;
      s.rank = r;
      s.workers = k;
      s.seed = 11;
      s.threads = threads;
      ranks.push_back(std::make_unique<BatchLoader>(*ds, t, s));
    }
    std::vector<float> all;
    for (int64_t epoch = 1; epoch <= 2; ++epoch)
      for (int64_t i = 0; i < 2; ++i)
        for (auto& l : ranks) {
          std::vector<float> x(l->local_rows(i) * numel);
          std::vector<int32_t> labels(l->local_rows(i));
          l->load(epoch, i, x.data(), labels.data());
          all.insert(all.end(), x.begin(), x.end());
        }
    return all;
  };
  const std::vector<float> one = run(1, 1);
  EXPECT_EQ(one, run(1, 3)) << "repeatable";
  EXPECT_EQ(one, run(2, 2)) << "K = 2";
  EXPECT_EQ(one, run(4, 1)) << "K = 4";
  (void)b;
}

}  // namespace
}  // namespace owt
