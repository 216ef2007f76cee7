// BatchLoader: walks a dataset in global batches (K workers x b rows), shuffled per epoch by a
// keyed permutation identical on every worker; each worker assembles only its own b rows, on a
// pool of decode threads that prefetches the next batches while the trainer computes, into host
// buffers it owns and recycles (page-locked ones from the backend, for uploads without a copy).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "owt/backend/host_buffer.h"
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
  // Where the batch buffers come from (each holds b rows): Backend::allocate_host for uploads
  // without a staging copy; empty: plain host memory (allocate_aligned_host).
  std::function<std::shared_ptr<HostBuffer>(size_t bytes)> host_buffers = nullptr;
};

// This worker's share of one batch, as next() hands it over: owned by the loader and valid
// until the next call of next() or load(). The loader calls images.wait_unused() before it
// writes the buffer again, so an upload from it may still run when the next call comes.
struct LoadedBatch {
  HostBuffer& images;       // (rows, C, H, W) floats from offset 0 (room for b rows)
  const int32_t* labels;    // (rows)
  int64_t rows;
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
  // This worker's share of batch `index` of `epoch`, without a copy (LoadedBatch). The batch
  // after the previous request (the next index, or batch 0 of the next epoch) comes from the
  // prefetch queue; any other request is decoded now. Either way the batches that should come
  // next are queued behind it.
  LoadedBatch next(int64_t epoch, int64_t index);
  // next(), copied into x (rows, C, H, W) and labels (rows).
  void load(int64_t epoch, int64_t index, float* x, int32_t* labels);
  // The epoch's permutation of example indices (identity when not shuffling).
  const std::vector<int64_t>& order(int64_t epoch);

  // Seconds next() and load() have blocked their caller in total (waiting for decoding, and
  // load's copy).
  double wait_seconds() const { return wait_seconds_; }
  // Examples skipped as unreadable so far (each warned about once), plus the files the data
  // set left out when it was opened.
  int64_t skipped() const;

 private:
  struct Job;
  struct Pool;
  std::shared_ptr<Job> submit(int64_t epoch, int64_t index);
  std::shared_ptr<HostBuffer> take_buffer();
  void cancel_pending();
  void run_rows(Job& job, int64_t begin, int64_t end, Image& img, std::vector<float>& scratch);
  void decode_row(Job& job, int64_t row, Image& img, std::vector<float>& scratch);
  int64_t replacement_for(int64_t example, const std::string& why);

  const Dataset& data_;
  const Transform& transform_;
  LoaderSpec spec_;
  std::deque<std::pair<int64_t, std::shared_ptr<const std::vector<int64_t>>>> orders_;  // 2 epochs
  std::deque<std::shared_ptr<Job>> pending_;  // prefetched batches, in request order
  std::shared_ptr<Job> current_;              // the batch next() handed over last
  std::vector<std::shared_ptr<HostBuffer>> spare_;  // recycled batch buffers (b rows each)
  double wait_seconds_ = 0;
  std::unique_ptr<Pool> pool_;  // last: its threads stop before the rest is destroyed
};

}  // namespace owt
