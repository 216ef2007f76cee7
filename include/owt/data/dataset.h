// Dataset: indexed examples with labels, whatever the file format. Readers decode to float
// pixels in [0, 1], (C, H, W); normalisation and augmentation come after (data/transform.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "owt/core/shape.h"

namespace owt {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Shape example_shape() const = 0;           // (C, H, W) as stored
  virtual int classes() const = 0;
  virtual std::vector<std::string> class_names() const;  // default "0", "1", ...
  virtual int32_t label(int64_t i) const = 0;
  // Writes example i as (C, H, W) floats in [0, 1].
  virtual void read(int64_t i, float* out) const = 0;
};

// IDX files (MNIST, Fashion-MNIST), raw or .gz: `split` is "train" or "test" and selects
// <dir>/train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] (or t10k-*).
std::unique_ptr<Dataset> open_idx_dataset(const std::string& dir, const std::string& split);

// Dispatches on the model file's `data.format` (idx, ...). Errors name the path.
std::unique_ptr<Dataset> open_dataset(const std::string& format, const std::string& dir,
                                      const std::string& split);

}  // namespace owt
