// Placement: where one tensor lives across the K workers, in the vocabulary of PyTorch's DTensor
// (Replicate / Shard(dim) / Partial). Layers state the placement of their input, output, input
// gradient and params; the hybrid step derives every collective from them (docs/ARCHITECTURE.md).
#pragma once
#include <cstdint>
#include <string>

namespace owt {

struct Placement {
  enum class Kind {
    Replicate,  // every worker holds the whole tensor
    Shard,      // worker k holds the slice [begin, end) of dimension `dim` (of `size` in all)
    Partial,    // every worker holds a whole-shaped tensor; the value is their sum
  };
  Kind kind = Kind::Replicate;
  int dim = 0;
  // Shard only. For activations, dim 0 is the batch (rows) and dim 1 the features; the row
  // extents change with every batch (BatchRows says them), so a row shard leaves them 0.
  int64_t begin = 0, end = 0, size = 0;

  static Placement replicate() { return {}; }
  static Placement partial() { return {Kind::Partial, 0, 0, 0, 0}; }
  static Placement shard(int dim, int64_t begin = 0, int64_t end = 0, int64_t size = 0) {
    return {Kind::Shard, dim, begin, end, size};
  }
  // Activations of the data-parallel stage: each worker its own rows of the global batch.
  static Placement rows() { return shard(0); }

  bool is_replicate() const { return kind == Kind::Replicate; }
  bool is_partial() const { return kind == Kind::Partial; }
  bool is_shard(int d) const { return kind == Kind::Shard && dim == d; }
  // A feature shard (rows, [begin, end) of `size` features): the input of a row-parallel linear.
  bool is_feature_shard() const { return is_shard(1); }

  // "Replicate", "Partial", "Shard(0)" or "Shard(1)[8:16 of 32]".
  std::string str() const {
    if (kind == Kind::Replicate) return "Replicate";
    if (kind == Kind::Partial) return "Partial";
    std::string s = "Shard(" + std::to_string(dim) + ")";
    if (size > 0)
      s += "[" + std::to_string(begin) + ":" + std::to_string(end) + " of " + std::to_string(size) + "]";
    return s;
  }
};

inline bool operator==(const Placement& a, const Placement& b) {
  return a.kind == b.kind && a.dim == b.dim && a.begin == b.begin && a.end == b.end && a.size == b.size;
}
inline bool operator!=(const Placement& a, const Placement& b) { return !(a == b); }

}  // namespace owt
