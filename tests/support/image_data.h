// Test fixture: generated data sets in the CIFAR binary layout and as image folders (JPEG and
// PNG written through owt's OpenCV codec), with the pixels kept for comparison.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace owt::test {

// Synthetic RGB images (H, W, 3): a bright class blob over Philox noise; label i % classes.
struct RgbImages {
  int n = 0, h = 0, w = 0, classes = 0;
  std::vector<uint8_t> hwc;     // (n, h, w, 3)
  std::vector<uint8_t> labels;  // (n)
  const uint8_t* image(int i) const { return hwc.data() + static_cast<size_t>(i) * h * w * 3; }
};
RgbImages make_rgb_images(int n, int h, int w, int classes, uint64_t seed);

// One CIFAR binary batch: records of `label_bytes` (1: CIFAR-10; 2: CIFAR-100 coarse, fine)
// then 3072 bytes of R, G, B planes. Images must be 32x32. The coarse label is fine / 5.
std::string cifar_bytes(const RgbImages& images, int label_bytes);

// <dir>/data_batch_1.bin + test_batch.bin (classes 10) or train.bin + test.bin (100).
void write_cifar_dataset(const std::string& dir, int classes, int n_train, int n_test,
                         uint64_t seed);

// <root>/<split>/class_<k>/img_<i>.<ext>; ext alternates ".png", ".jpg" when `ext` is "mixed".
void write_image_folder(const std::string& root, const std::string& split, const RgbImages& images,
                        const std::string& ext);
// The path write_image_folder gives image i.
std::string image_path(const std::string& root, const std::string& split, const RgbImages& images,
                       int i, const std::string& ext);

}  // namespace owt::test
