// BatchLoader: walks a dataset in global batches (K workers x b rows), shuffled per epoch by a
// keyed permutation identical on every worker; each worker assembles only its own b rows.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "owt/data/dataset.h"
#include "owt/data/transform.h"

namespace owt {

struct LoaderSpec {
  int64_t batch = 128;      // rows per worker (b)
  int rank = 0, workers = 1;
  bool shuffle = true;
  bool train = true;        // random augmentation on
  bool drop_last = true;    // training drops a final partial global batch
  uint64_t seed = 0;
  int threads = 1;          // decode/augment threads
};

class BatchLoader {
 public:
  BatchLoader(const Dataset& data, const Transform& transform, LoaderSpec spec);
  ~BatchLoader();
  // Global batches per epoch.
  int64_t batches_per_epoch() const;
  // Rows this worker gets in global batch `index` (b, or fewer in a final partial batch).
  int64_t local_rows(int64_t index) const;
  // Global example position (in epoch order) of this worker's row 0 in batch `index`.
  int64_t global_row0(int64_t index) const;
  // Fills x (rows, C, H, W) and labels (rows) of this worker's share of batch `index` of `epoch`.
  void load(int64_t epoch, int64_t index, float* x, int32_t* labels);
  // The epoch's permutation of example indices (identity when not shuffling).
  const std::vector<int64_t>& order(int64_t epoch);

 private:
  const Dataset& data_;
  const Transform& transform_;
  LoaderSpec spec_;
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;
  std::vector<float> scratch_;
};

}  // namespace owt
