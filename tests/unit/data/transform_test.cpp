// Transform tests: exact normalisation, crop and flip geometry on a tiny known image, keyed
// determinism (same seed/epoch/example -> same output), eval-mode centre crop, spec checks.
#include <gtest/gtest.h>

#include <set>
#include <tuple>
#include <vector>

#include "owt/core/error.h"
#include "owt/data/transform.h"

namespace owt {
namespace {

// (2, 3, 4) image with value 1 + c*100 + y*10 + x, so every pixel (and padding = 0) is distinct.
std::vector<float> known_image() {
  std::vector<float> v(24);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) v[c * 12 + y * 4 + x] = 1.0f + c * 100 + y * 10 + x;
  return v;
}

// The (oh, ow) window at padded origin (y0, x0), optionally mirrored, of known_image padded by
// `pad` zeros — the reference the transform must match exactly (no normalisation).
std::vector<float> window(int pad, int oh, int ow, int y0, int x0, bool flip) {
  std::vector<float> in = known_image(), out(2 * oh * ow);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x) {
        int sy = y0 + y - pad, sx = x0 + (flip ? ow - 1 - x : x) - pad;
        bool inside = sy >= 0 && sy < 3 && sx >= 0 && sx < 4;
        out[c * oh * ow + y * ow + x] = inside ? in[c * 12 + sy * 4 + sx] : 0.0f;
      }
  return out;
}

std::vector<float> run(const Transform& t, int64_t epoch, int64_t example, bool train) {
  std::vector<float> in = known_image(), out(t.output_shape().numel());
  t.apply(in.data(), out.data(), epoch, example, train);
  return out;
}

TEST(Transform, NormalisesPerChannel) {
  TransformSpec spec;
  spec.mean = {0.5f, 100.0f};
  spec.std = {2.0f, 4.0f};
  Transform t(spec, Shape{2, 3, 4}, 1);
  EXPECT_EQ(t.output_shape(), (Shape{2, 3, 4}));
  std::vector<float> in = known_image(), out = run(t, 0, 0, true);
  for (int i = 0; i < 24; ++i) {
    const int c = i / 12;
    EXPECT_EQ(out[i], (in[i] - spec.mean[c]) / spec.std[c]) << i;
  }
}

TEST(Transform, SingleMeanAndStdApplyToEveryChannel) {
  TransformSpec spec;
  spec.mean = {1.0f};
  spec.std = {0.5f};
  Transform t(spec, Shape{2, 3, 4}, 1);
  std::vector<float> in = known_image(), out = run(t, 0, 0, false);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(out[i], (in[i] - 1.0f) / 0.5f);
}

TEST(Transform, EvalIsDeterministicCentreCrop) {
  TransformSpec spec;
  spec.crop = 2;
  spec.random_crop = true;
  spec.flip = true;
  Transform t(spec, Shape{2, 3, 4}, 7);
  EXPECT_EQ(t.output_shape(), (Shape{2, 2, 2}));
  // Room 1 row and 2 columns: origin (0, 1), never flipped.
  for (int64_t epoch = 0; epoch < 5; ++epoch)
    for (int64_t ex = 0; ex < 20; ++ex) ASSERT_EQ(run(t, epoch, ex, false), window(0, 2, 2, 0, 1, false));
}

TEST(Transform, EvalWithPaddingCropsTheCentre) {
  TransformSpec spec;
  spec.pad = 1;
  spec.crop = 3;
  spec.random_crop = true;
  Transform t(spec, Shape{2, 3, 4}, 7);
  // Padded 5x6, room (2, 3): origin (1, 1) -> the input's top-left 3x3.
  EXPECT_EQ(run(t, 3, 9, false), window(1, 3, 3, 1, 1, false));
}

TEST(Transform, TrainCropIsAnExactWindowAndCoversEveryOffsetAndFlip) {
  TransformSpec spec;
  spec.pad = 1;
  spec.crop = 3;
  spec.random_crop = true;
  spec.flip = true;
  Transform t(spec, Shape{2, 3, 4}, 42);
  std::set<std::tuple<int, int, bool>> seen;
  int flips = 0;
  const int trials = 600;
  for (int ex = 0; ex < trials; ++ex) {
    std::vector<float> out = run(t, 2, ex, true);
    bool matched = false;
    for (int y0 = 0; y0 <= 2 && !matched; ++y0)
      for (int x0 = 0; x0 <= 3 && !matched; ++x0)
        for (bool flip : {false, true})
          if (out == window(1, 3, 3, y0, x0, flip)) {
            seen.insert({y0, x0, flip});
            flips += flip;
            matched = true;
            break;
          }
    ASSERT_TRUE(matched) << "example " << ex << " is not a padded crop of the input";
  }
  EXPECT_EQ(seen.size(), 3u * 4u * 2u);  // every origin, flipped and not
  EXPECT_GT(flips, trials * 0.4);
  EXPECT_LT(flips, trials * 0.6);
}

TEST(Transform, FlipOnlyMirrorsRows) {
  TransformSpec spec;
  spec.flip = true;
  Transform t(spec, Shape{2, 3, 4}, 5);
  int flipped = 0;
  for (int ex = 0; ex < 100; ++ex) {
    std::vector<float> out = run(t, 0, ex, true);
    bool plain = out == window(0, 3, 4, 0, 0, false), mirror = out == window(0, 3, 4, 0, 0, true);
    ASSERT_TRUE(plain || mirror) << ex;
    flipped += mirror;
  }
  EXPECT_GT(flipped, 25);
  EXPECT_LT(flipped, 75);
}

TEST(Transform, PaddingIsZeroBeforeNormalisation) {
  TransformSpec spec;
  spec.pad = 2;
  spec.crop = 7;  // padded 7x8: column 0 and rows 0-1 of the window are padding
  spec.mean = {3.0f};
  spec.std = {2.0f};
  Transform t(spec, Shape{2, 3, 4}, 1);
  std::vector<float> out = run(t, 0, 0, false);  // origin (0, 0)
  EXPECT_EQ(out[0], (0.0f - 3.0f) / 2.0f);
  EXPECT_EQ(out[2 * 7 + 2], (1.0f - 3.0f) / 2.0f);  // (y=2, x=2) is input pixel (0, 0)
}

TEST(Transform, KeyedBySeedEpochAndExampleOnly) {
  TransformSpec spec;
  spec.pad = 4;
  spec.crop = 8;
  spec.random_crop = true;
  spec.flip = true;
  const Shape in{1, 8, 8};
  std::vector<float> img(64);
  for (int i = 0; i < 64; ++i) img[i] = static_cast<float>(i + 1);
  auto apply = [&](const Transform& t, int64_t epoch, int64_t ex) {
    std::vector<float> out(64);
    t.apply(img.data(), out.data(), epoch, ex, true);
    return out;
  };
  Transform a(spec, in, 123), b(spec, in, 123), other_seed(spec, in, 124);
  int epoch_diff = 0, seed_diff = 0, example_diff = 0;
  for (int64_t ex = 0; ex < 20; ++ex) {
    // Another Transform object (another worker) with the same seed, in any call order.
    std::vector<float> later = apply(b, 3, 19 - ex);
    EXPECT_EQ(apply(a, 3, 19 - ex), later);
    EXPECT_EQ(apply(a, 3, ex), apply(a, 3, ex));
    epoch_diff += apply(a, 3, ex) != apply(a, 4, ex);
    seed_diff += apply(a, 3, ex) != apply(other_seed, 3, ex);
    example_diff += apply(a, 3, ex) != apply(a, 3, ex + 1);
  }
  // 81 origins x 2 flips: a collision has probability ~1/162 per example.
  EXPECT_GE(epoch_diff, 17);
  EXPECT_GE(seed_diff, 17);
  EXPECT_GE(example_diff, 17);
}

std::string spec_error(TransformSpec spec) {
  try {
    Transform t(spec, Shape{2, 3, 4}, 0);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Transform, RejectsBadSpecNamingTheField) {
  TransformSpec crop;
  crop.crop = 4;  // larger than the 3-row input
  EXPECT_NE(spec_error(crop).find("augment.crop"), std::string::npos) << spec_error(crop);
  crop.pad = 1;  // now fits: padded 5x6
  EXPECT_EQ(spec_error(crop), "(no error)");
  TransformSpec pad;
  pad.pad = -1;
  EXPECT_NE(spec_error(pad).find("augment.pad"), std::string::npos) << spec_error(pad);
  TransformSpec mean;
  mean.mean = {0.1f, 0.2f, 0.3f};
  EXPECT_NE(spec_error(mean).find("augment.mean"), std::string::npos) << spec_error(mean);
  TransformSpec std_len;
  std_len.std = {1.0f, 1.0f, 1.0f};
  EXPECT_NE(spec_error(std_len).find("augment.std"), std::string::npos) << spec_error(std_len);
  TransformSpec std_zero;
  std_zero.std = {1.0f, 0.0f};
  EXPECT_NE(spec_error(std_zero).find("augment.std"), std::string::npos) << spec_error(std_zero);
  TransformSpec std_neg;
  std_neg.std = {-1.0f};
  EXPECT_NE(spec_error(std_neg).find("augment.std"), std::string::npos) << spec_error(std_neg);
}

}  // namespace
}  // namespace owt
