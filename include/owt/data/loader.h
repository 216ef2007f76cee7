// BatchLoader: walks a dataset in global batches (K workers x b rows), shuffled per epoch by a
// keyed permutation identical on every worker; each worker assembles only its own b rows, on a
// pool of decode threads that prefetches the next batches while the trainer computes.
#pragma once
#include <cstdint>
#include <deque>
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
  int prefetch = 2;         // batches decoded ahead of the trainer (0: only on demand)
  bool strict = false;      // an unreadable example is an error instead of skipped
  int view = -1;            // evaluation: fixed view 0..9 (Transform::apply_view); -1: none
};

class BatchLoader {
 public:
  BatchLoader(const Dataset& data, const Transform& transform, LoaderSpec spec);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;
  // Global batches per epoch.
  int64_t batches_per_epoch() const;
  // Rows this worker gets in global batch `index` (b, or fewer in a final partial batch).
  int64_t local_rows(int64_t index) const;
  // Position of this worker's row 0 within global batch `index` (rank x b for a full batch),
  // as split_rows (train/evaluate.h) lays the rows out.
  int64_t global_row0(int64_t index) const;
  // Fills x (rows, C, H, W) and labels (rows) of this worker's share of batch `index` of `epoch`.
  // The batch after the previous request (the next index, or batch 0 of the next epoch) comes
  // from the prefetch queue; any other request is decoded now, straight into x.
  void load(int64_t epoch, int64_t index, float* x, int32_t* labels);
  // The epoch's permutation of example indices (identity when not shuffling).
  const std::vector<int64_t>& order(int64_t epoch);

  // Seconds load() has blocked its caller in total (waiting for decoding and copying).
  double wait_seconds() const { return wait_seconds_; }
  // Examples skipped as unreadable so far (each warned about once), plus the files the data
  // set left out when it was opened.
  int64_t skipped() const;

 private:
  struct Job;
  struct Pool;
  std::shared_ptr<Job> submit(int64_t epoch, int64_t index, float* x, int32_t* labels);
  void run_rows(Job& job, int64_t begin, int64_t end, Image& img, std::vector<float>& scratch);
  void decode_row(Job& job, int64_t row, Image& img, std::vector<float>& scratch);
  int64_t replacement_for(int64_t example, const std::string& why);

  const Dataset& data_;
  const Transform& transform_;
  LoaderSpec spec_;
  std::deque<std::pair<int64_t, std::shared_ptr<const std::vector<int64_t>>>> orders_;  // 2 epochs
  std::deque<std::shared_ptr<Job>> pending_;  // prefetched batches, in request order
  std::vector<std::vector<float>> spare_;     // recycled prefetch buffers
  double wait_seconds_ = 0;
  std::unique_ptr<Pool> pool_;  // last: its threads stop before the rest is destroyed
};

}  // namespace owt
