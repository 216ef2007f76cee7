// Tensor: a typed, shaped view into a device Buffer. Buffers are made by a Backend, so a
// tensor's memory lives where its backend computes; views share the buffer (no copies).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "owt/core/error.h"
#include "owt/core/shape.h"

namespace owt {

enum class Device { CPU, CUDA };
enum class DType { F32, I32 };

inline size_t dtype_size(DType) { return 4; }  // both dtypes are 4 bytes
inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// Raw device memory; freed by the deleter its backend gave it.
struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  std::function<void(void*)> deleter;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (ptr && deleter) deleter(ptr);
  }
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Buffer> buf, Shape shape, DType dtype = DType::F32, size_t offset = 0)
      : buf_(std::move(buf)), shape_(std::move(shape)), dtype_(dtype), offset_(offset) {
    OWT_CHECK(!buf_ || (offset_ + shape_.numel()) * dtype_size(dtype_) <= buf_->bytes,
              "view past the end of its buffer");
  }

  bool defined() const { return buf_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  int64_t size(int i) const { return shape_[i]; }
  DType dtype() const { return dtype_; }
  Device device() const { return buf_ ? buf_->device : Device::CPU; }

  float* f32() const {
    OWT_CHECK(dtype_ == DType::F32);
    return buf_ ? static_cast<float*>(buf_->ptr) + offset_ : nullptr;
  }
  int32_t* i32() const {
    OWT_CHECK(dtype_ == DType::I32);
    return buf_ ? static_cast<int32_t*>(buf_->ptr) + offset_ : nullptr;
  }

  // A view of `shape.numel()` elements starting `offset` elements into this tensor.
  Tensor view(size_t offset, Shape shape) const {
    OWT_CHECK(static_cast<int64_t>(offset) + shape.numel() <= numel(), "view out of range");
    return Tensor(buf_, std::move(shape), dtype_, offset_ + offset);
  }
  // Rows [row0, row0 + rows) of a tensor whose first axis is the batch.
  Tensor rows(int64_t row0, int64_t rows) const {
    int64_t per_row = shape_.rank() ? numel() / shape_[0] : 1;
    std::vector<int64_t> d = shape_.dims();
    d[0] = rows;
    return view(static_cast<size_t>(row0 * per_row), Shape(d));
  }
  Tensor reshaped(Shape shape) const {
    OWT_CHECK(shape.numel() == numel(), "reshape ", shape_.str(), " -> ", shape.str());
    return Tensor(buf_, std::move(shape), dtype_, offset_);
  }
  // The capacity of the underlying buffer in elements from this view's start.
  size_t capacity() const { return buf_ ? buf_->bytes / dtype_size(dtype_) - offset_ : 0; }

 private:
  std::shared_ptr<Buffer> buf_;
  Shape shape_;
  DType dtype_ = DType::F32;
  size_t offset_ = 0;
};

}  // namespace owt
