// Shape: the dimensions of a tensor, outermost first (PyTorch order: N, C, H, W).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "owt/core/error.h"

namespace owt {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t operator[](int i) const { return dims_.at(i < 0 ? i + rank() : i); }
  // The product of the dims; an Error (never a wrapped-around count) when it overflows 64 bits,
  // so a model file with absurd sizes is refused instead of allocating garbage.
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims_)
      if (__builtin_mul_overflow(n, d, &n))
        throw Error(cat("shape ", str(), " has more elements than a 64-bit count holds"));
    return n;
  }
  const std::vector<int64_t>& dims() const { return dims_; }
  // The same shape with a leading batch dimension: (rows, dims...).
  Shape with_batch(int64_t rows) const {
    std::vector<int64_t> d{rows};
    d.insert(d.end(), dims_.begin(), dims_.end());
    return Shape(d);
  }
  // The shape without its leading dimension.
  Shape without_batch() const { return Shape(std::vector<int64_t>(dims_.begin() + 1, dims_.end())); }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }
  std::string str() const {
    std::string s = "(";
    for (size_t i = 0; i < dims_.size(); ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + ")";
  }

 private:
  std::vector<int64_t> dims_;
};

}  // namespace owt
