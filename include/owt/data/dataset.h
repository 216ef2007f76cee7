// Dataset: indexed examples with labels, whatever the file format (IDX, CIFAR binary, image
// folders, packed shards). Readers decode to float pixels in [0, 1], (C, H, W), RGB order;
// normalisation and augmentation come after (data/transform.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "owt/core/error.h"
#include "owt/core/shape.h"

namespace owt {

// One decoded example at its own size.
struct Image {
  int64_t c = 0, h = 0, w = 0;
  std::vector<float> pixels;  // (C, H, W) in [0, 1]
  void resize(int64_t channels, int64_t height, int64_t width) {
    c = channels, h = height, w = width;
    pixels.resize(static_cast<size_t>(c * h * w));
  }
};

// One unusable example (a corrupt, truncated or non-image file, a bad record): the loader
// skips it with a warning unless strict. Every other Error is fatal.
class BadExample : public Error {
 public:
  using Error::Error;
};

// How to open a set: strict turns files skipped when scanning (non-image files) into errors.
struct DatasetOptions {
  bool strict = false;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // (C, H, W) as stored; H = W = 0 when sizes vary (folders, packed sets of mixed sizes).
  virtual Shape example_shape() const = 0;
  virtual int classes() const = 0;
  virtual std::vector<std::string> class_names() const;  // default "0", "1", ...
  virtual int32_t label(int64_t i) const = 0;
  // Writes example i as (C, H, W) floats in [0, 1]; only for sets of one size.
  virtual void read(int64_t i, float* out) const = 0;
  // Example i at its own size; throws BadExample when it cannot be decoded. Default: read().
  virtual void read_image(int64_t i, Image& out) const;
  // Where example i comes from, for messages (a file, or a file and record).
  virtual std::string source(int64_t i) const;
  // Files left out when the set was opened (not images), each already warned about.
  virtual int64_t skipped_at_open() const { return 0; }
};

// IDX files (MNIST, Fashion-MNIST), raw or .gz: `split` is "train" or "test" and selects
// <dir>/train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] (or t10k-*).
std::unique_ptr<Dataset> open_idx_dataset(const std::string& dir, const std::string& split);

// CIFAR binary batches: cifar10 reads data_batch_{1..5}.bin / test_batch.bin (1 label byte +
// 3072 pixel bytes per record), cifar100 train.bin / test.bin (coarse, fine label bytes; the
// fine label is used). `dir` is the folder holding them or its parent (cifar-10-batches-bin,
// cifar-100-binary as the tarballs unpack).
std::unique_ptr<Dataset> open_cifar_dataset(const std::string& dir, const std::string& split,
                                            int classes);

// Image folder <dir>/<split>/<class>/*.{jpg,jpeg,png,bmp,ppm,pgm,tif,tiff,webp}; split "test"
// also finds "val". Class index = position in the sorted class names of <dir>/train (or of the
// split itself when there is no train folder). Split kWholeFolder reads <dir>/<class>/* (a
// folder of class folders, torchvision's ImageFolder root) as one split. Needs OpenCV.
constexpr const char* kWholeFolder = ".";
std::unique_ptr<Dataset> open_folder_dataset(const std::string& dir, const std::string& split,
                                             DatasetOptions options = {});

// Packed set written by pack_image_folder (data/pack.h): <dir>/<split>.owtpack + shards.
std::unique_ptr<Dataset> open_packed_dataset(const std::string& dir, const std::string& split);

// Dispatches on the model file's `data.format` (idx, cifar10, cifar100, folder, packed).
// Errors name the path. `synthetic` has no files and is refused here: it is generated from the
// model file's sizes (open_synthetic_dataset, data/synthetic_dataset.h).
std::unique_ptr<Dataset> open_dataset(const std::string& format, const std::string& dir,
                                      const std::string& split, DatasetOptions options = {});

// The format of the data set at `path`, guessed from the files there ("folder" also for a
// folder of class folders holding images); "" when unknown.
std::string detect_format(const std::string& path);

// Prints "owt: warning: <message>" on stderr (one line, thread-safe).
void warn(const std::string& message);

}  // namespace owt
