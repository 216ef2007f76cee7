// BatchLoader: the per-epoch keyed permutation (Fisher-Yates on Philox, Purpose::Shuffle), the
// split of each global batch into worker rows, and the prefetch queue with its recycled host
// buffers (next, load). Decoding rows on the pool threads is batch_loader_rows.cpp.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "loader_job.h"
#include "owt/core/error.h"
#include "owt/core/shard.h"

namespace owt {

BatchLoader::BatchLoader(const Dataset& data, const Transform& transform, LoaderSpec spec)
    : data_(data), transform_(transform), spec_(spec) {
  if (spec_.batch < 1) throw Error(cat("solver.batch: ", spec_.batch, " must be >= 1"));
  if (spec_.workers < 1 || spec_.rank < 0 || spec_.rank >= spec_.workers)
    throw Error(cat("data loader: rank ", spec_.rank, " of ", spec_.workers, " workers is invalid"));
  if (spec_.threads < 1) throw Error(cat("--threads: ", spec_.threads, " must be >= 1"));
  if (spec_.prefetch < 0) throw Error(cat("data.prefetch: ", spec_.prefetch, " must be >= 0"));
  if (spec_.view < -1 || spec_.view >= 10)
    throw Error(cat("data loader: view ", spec_.view, " is not in 0..9"));
  pool_ = std::make_unique<Pool>();
  for (int t = 0; t < spec_.threads; ++t)
    pool_->threads.emplace_back([this] {
      Image img;                   // per-thread decode buffer, (C, H, W)
      std::vector<float> scratch;  // per-thread resize buffer
      Pool& p = *pool_;
      for (;;) {
        Pool::Task task;
        {
          std::unique_lock<std::mutex> lock(p.mu);
          p.cv.wait(lock, [&] { return p.stop || !p.tasks.empty(); });
          if (p.stop) return;
          task = std::move(p.tasks.front());
          p.tasks.pop_front();
        }
        run_rows(*task.job, task.begin, task.end, img, scratch);
      }
    });
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
  for (const auto& o : orders_)
    if (o.first == epoch) return *o.second;
  const int64_t n = data_.size();
  auto ord = std::make_shared<std::vector<int64_t>>(n);
  std::iota(ord->begin(), ord->end(), int64_t{0});
  if (spec_.shuffle) {
    // Fisher-Yates from the back; j from 64 random bits (modulo bias < 2^-32 for n < 2^32).
    const RngKey key = rng_key(spec_.seed, Purpose::Shuffle);
    for (int64_t i = n - 1; i > 0; --i) {
      Philox4 r = philox4x32(static_cast<uint32_t>(epoch), static_cast<uint32_t>(i), 0, 0,
                             key.k0, key.k1);
      uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
      std::swap((*ord)[i], (*ord)[bits % static_cast<uint64_t>(i + 1)]);
    }
  }
  // Two epochs cached: prefetching the next epoch must not evict the one the trainer reads.
  if (orders_.size() == 2) orders_.pop_front();
  orders_.emplace_back(epoch, ord);
  return *orders_.back().second;
}

int64_t BatchLoader::skipped() const {
  std::lock_guard<std::mutex> lock(pool_->bad_mu);
  return data_.skipped_at_open() + static_cast<int64_t>(pool_->bad.size());
}

// A buffer for b rows: a recycled one once no upload reads it any more, else a new one.
std::shared_ptr<HostBuffer> BatchLoader::take_buffer() {
  if (!spare_.empty()) {
    std::shared_ptr<HostBuffer> buf = std::move(spare_.back());
    spare_.pop_back();
    buf->wait_unused();
    return buf;
  }
  const size_t bytes =
      static_cast<size_t>(spec_.batch * transform_.output_shape().numel()) * sizeof(float);
  std::shared_ptr<HostBuffer> buf =
      spec_.host_buffers ? spec_.host_buffers(bytes) : allocate_aligned_host(bytes);
  OWT_CHECK(buf && buf->bytes() >= bytes, "data loader: host buffer of ", buf ? buf->bytes() : 0,
            " bytes for a batch of ", bytes);
  return buf;
}

std::shared_ptr<BatchLoader::Job> BatchLoader::submit(int64_t epoch, int64_t index) {
  auto job = std::make_shared<Job>();
  job->epoch = epoch;
  job->index = index;
  job->rows = local_rows(index);
  const std::vector<int64_t>& ord = order(epoch);
  const int64_t first = index * spec_.batch * spec_.workers + global_row0(index);
  job->examples.assign(ord.begin() + first, ord.begin() + first + job->rows);
  job->numel = transform_.output_shape().numel();
  job->images = take_buffer();
  job->labels.resize(job->rows);
  // Row ranges small enough that every thread gets several.
  const int64_t chunk = std::max<int64_t>(1, job->rows / (4 * spec_.threads));
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    for (int64_t r = 0; r < job->rows; r += chunk) {
      pool_->tasks.push_back(Pool::Task{job, r, std::min(job->rows, r + chunk)});
      ++job->remaining;
    }
  }
  pool_->cv.notify_all();
  return job;
}

// Drops the prefetch queue: queued row ranges are removed, running ones stop after their row,
// and each job's buffer is recycled once no thread writes it.
void BatchLoader::cancel_pending() {
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    for (auto& p : pending_) p->cancelled = true;
    auto& q = pool_->tasks;
    for (const Pool::Task& t : q)
      if (t.job->cancelled) {
        std::lock_guard<std::mutex> job_lock(t.job->mu);
        --t.job->remaining;
      }
    q.erase(std::remove_if(q.begin(), q.end(), [](const Pool::Task& t) { return t.job->cancelled.load(); }),
            q.end());
  }
  for (auto& p : pending_) {
    std::unique_lock<std::mutex> lock(p->mu);
    p->done_cv.wait(lock, [&] { return p->remaining == 0; });
    spare_.push_back(std::move(p->images));
  }
  pending_.clear();
}

LoadedBatch BatchLoader::next(int64_t epoch, int64_t index) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n_batches = batches_per_epoch();
  OWT_CHECK(index >= 0 && index < n_batches, "batch ", index, " of ", n_batches);
  // Without shuffling or augmentation every epoch is the same: key them all as epoch 0.
  if (!spec_.shuffle && !spec_.train) epoch = 0;
  // The batch handed over last is no longer the caller's: its buffer takes a later batch.
  if (current_) spare_.push_back(std::move(current_->images));
  current_.reset();

  std::shared_ptr<Job> job;
  if (!pending_.empty() && pending_.front()->epoch == epoch && pending_.front()->index == index) {
    job = pending_.front();
    pending_.pop_front();
  } else {  // not the predicted batch: drop the queue, decode this one now
    cancel_pending();
    job = submit(epoch, index);
  }
  // Queue the batches that should come next, behind this one.
  int64_t next_epoch = epoch, next_index = index;
  for (const auto& p : pending_) next_epoch = p->epoch, next_index = p->index;
  while (static_cast<int>(pending_.size()) < spec_.prefetch) {
    if (++next_index == n_batches) {
      next_index = 0;
      if (spec_.shuffle || spec_.train) ++next_epoch;
    }
    pending_.push_back(submit(next_epoch, next_index));
  }
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->done_cv.wait(lock, [&] { return job->remaining == 0; });
  }
  current_ = job;
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (job->failure) std::rethrow_exception(job->failure);
  return LoadedBatch{*job->images, job->labels.data(), job->rows};
}

void BatchLoader::load(int64_t epoch, int64_t index, float* x, int32_t* labels) {
  const LoadedBatch batch = next(epoch, index);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t numel = transform_.output_shape().numel();
  if (batch.rows > 0) {
    std::memcpy(x, batch.images.data(), static_cast<size_t>(batch.rows * numel) * sizeof(float));
    std::memcpy(labels, batch.labels, static_cast<size_t>(batch.rows) * sizeof(int32_t));
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace owt
