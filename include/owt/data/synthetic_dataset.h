// SyntheticDataset (`data.format: synthetic`): examples generated on the fly from keyed Philox,
// nothing stored on disk and nothing held per class, so a model with 10^6 classes opens at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "owt/core/shape.h"
#include "owt/data/dataset.h"

namespace owt {

// What a synthetic set generates (the model file's data keys, input, classes and seed).
//
// Example i of a split (0 ≤ i < examples), pixel (c, y, x) of (C, H, W):
//   label(i)    = uniform: i mod classes (every class appears once examples ≥ classes; the test
//                 split covers classes 0..test_examples-1, all seen in training when train ≥ test)
//                 zipf: floor((classes + 1)^u) - 1, u uniform in [0, 1) keyed by (seed, split,
//                 i): P(k) = ln((k + 2) / (k + 1)) / ln(classes + 1) ≈ 1 / ((k + 1) ln classes),
//                 the long tail of real extreme-classification sets (a few classes in every
//                 batch, most rarely seen)
//   proto_k     = class k's prototype: uniform [0, 1) values keyed by (seed, k, c, grid point)
//                 on a grid every kSyntheticCell pixels, interpolated bilinearly (smooth, so a
//                 shift of a pixel or two keeps an example near its prototype)
//   (dy, dx)    = integers uniform in [-shift, shift], keyed by (seed, split, i)
//   pixel       = clip(proto_label(i)(c, clamp(y - dy), clamp(x - dx)) + noise · n, 0, 1),
//                 n ~ N(0, 1) keyed by (seed, split, i, c, y, x) (the class is a function of i)
// Every draw is Purpose::Synthetic; the split is part of the key, so train and test examples
// differ while sharing the class prototypes.
enum class ClassFrequency { Uniform, Zipf };

struct SyntheticSpec {
  Shape shape;                  // (C, H, W) of every example
  int64_t classes = 2;
  int64_t train_examples = 0;   // examples of split "train"
  int64_t test_examples = 0;    // examples of split "test"
  float noise = 0.3f;           // standard deviation of the per-pixel Gaussian noise
  int64_t shift = 2;            // largest shift, in pixels, along H and along W
  ClassFrequency frequency = ClassFrequency::Uniform;  // how labels are drawn
  uint64_t seed = 1;
};

// Pixels between the prototype's grid points along H and W.
constexpr int64_t kSyntheticCell = 4;

// Split "train" or "test" of the set. Construction allocates nothing per class or example;
// read() is const and thread-safe (it keeps no state). Errors name the bad field.
std::unique_ptr<Dataset> open_synthetic_dataset(const SyntheticSpec& spec, const std::string& split);

}  // namespace owt
