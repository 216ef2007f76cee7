// Even splits of n items over K workers: worker r holds [shard_begin, shard_end), sizes differ by
// at most one. Rows of a batch, shards of a parameter and the loader's rows all split this way.
#pragma once
#include <cstddef>
#include <vector>

namespace owt {

inline size_t shard_begin(size_t n, int rank, int size) { return n * rank / size; }
inline size_t shard_end(size_t n, int rank, int size) { return n * (rank + 1) / size; }
// Each worker's count, times `unit` (elements per item).
inline std::vector<size_t> shard_counts(size_t n, int size, size_t unit = 1) {
  std::vector<size_t> c(size);
  for (int r = 0; r < size; ++r) c[r] = (shard_end(n, r, size) - shard_begin(n, r, size)) * unit;
  return c;
}

}  // namespace owt
