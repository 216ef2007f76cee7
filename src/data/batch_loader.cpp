// BatchLoader: the per-epoch keyed permutation (Fisher-Yates on Philox, Purpose::Shuffle),
// the split of each global batch into worker rows, and assembling one worker's rows with
// OpenMP threads (decode, then Transform).
#include <omp.h>

#include <algorithm>
#include <exception>
#include <numeric>

#include "owt/comm/communicator.h"
#include "owt/core/error.h"
#include "owt/data/loader.h"

namespace owt {

BatchLoader::BatchLoader(const Dataset& data, const Transform& transform, LoaderSpec spec)
    : data_(data), transform_(transform), spec_(spec) {
  if (spec_.batch < 1) throw Error(cat("solver.batch: ", spec_.batch, " must be >= 1"));
  if (spec_.workers < 1 || spec_.rank < 0 || spec_.rank >= spec_.workers)
    throw Error(cat("data loader: rank ", spec_.rank, " of ", spec_.workers, " workers is invalid"));
  if (spec_.threads < 1) throw Error(cat("--threads: ", spec_.threads, " must be >= 1"));
}

BatchLoader::~BatchLoader() = default;

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = data_.size(), global = spec_.batch * spec_.workers;
  return spec_.drop_last ? n / global : (n + global - 1) / global;
}

int64_t BatchLoader::local_rows(int64_t index) const {
  const int64_t global = spec_.batch * spec_.workers;
  const int64_t rows = std::min(global, data_.size() - index * global);
  if (rows == global) return spec_.batch;
  return static_cast<int64_t>(shard_end(rows, spec_.rank, spec_.workers) -
                              shard_begin(rows, spec_.rank, spec_.workers));
}

int64_t BatchLoader::global_row0(int64_t index) const {
  const int64_t global = spec_.batch * spec_.workers;
  const int64_t rows = std::min(global, data_.size() - index * global);
  if (rows == global) return spec_.rank * spec_.batch;
  return static_cast<int64_t>(shard_begin(rows, spec_.rank, spec_.workers));
}

const std::vector<int64_t>& BatchLoader::order(int64_t epoch) {
  if (epoch == order_epoch_) return order_;
  const int64_t n = data_.size();
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (spec_.shuffle) {
    // Fisher-Yates from the back; j from 64 random bits (modulo bias < 2^-32 for n < 2^32).
    const RngKey key = rng_key(spec_.seed, Purpose::Shuffle);
    for (int64_t i = n - 1; i > 0; --i) {
      Philox4 r = philox4x32(static_cast<uint32_t>(epoch), static_cast<uint32_t>(i), 0, 0,
                             key.k0, key.k1);
      uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
      std::swap(order_[i], order_[bits % static_cast<uint64_t>(i + 1)]);
    }
  }
  order_epoch_ = epoch;
  return order_;
}

void BatchLoader::load(int64_t epoch, int64_t index, float* x, int32_t* labels) {
  OWT_CHECK(index >= 0 && index < batches_per_epoch(), "batch ", index, " of ",
            batches_per_epoch());
  const std::vector<int64_t>& ord = order(epoch);
  const int64_t rows = local_rows(index);
  const int64_t first = index * spec_.batch * spec_.workers + global_row0(index);
  const int64_t in_numel = data_.example_shape().numel();
  const int64_t out_numel = transform_.output_shape().numel();
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(spec_.threads, rows)));
  scratch_.resize(static_cast<size_t>(threads * in_numel));
  const bool train = spec_.train;
  std::exception_ptr failure;  // an exception may not leave an OpenMP region
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    try {
      float* raw = scratch_.data() + omp_get_thread_num() * in_numel;
      const int64_t example = ord[first + r];
      data_.read(example, raw);
      transform_.apply(raw, x + r * out_numel, epoch, example, train);
      labels[r] = data_.label(example);
    } catch (...) {
#pragma omp critical(owt_loader_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace owt
