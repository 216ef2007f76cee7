// BatchLoader on the pool threads: decodes and augments a range of one job's rows into the
// job's buffer. An unreadable example is replaced by the next readable one of the same class
// (so every worker's labels stay those of the epoch order) and warned about once; strict: Error.
#include <string>

#include "loader_job.h"
#include "owt/core/error.h"

namespace owt {

void BatchLoader::run_rows(Job& job, int64_t begin, int64_t end, Image& img,
                           std::vector<float>& scratch) {
  std::exception_ptr failure;
  for (int64_t r = begin; r < end && !failure && !job.cancelled; ++r) {
    try {
      decode_row(job, r, img, scratch);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  std::lock_guard<std::mutex> lock(job.mu);
  if (failure && !job.failure) job.failure = failure;
  if (--job.remaining == 0) job.done_cv.notify_all();
}

void BatchLoader::decode_row(Job& job, int64_t row, Image& img, std::vector<float>& scratch) {
  const int64_t example = job.examples[row];
  float* out = job.images->f32() + row * job.numel;
  int64_t from = example;  // the example whose pixels fill the row
  for (;;) {
    try {
      data_.read_image(from, img);
      // Augmentation stays keyed by the row's own example, whichever image fills it.
      if (spec_.view >= 0) transform_.apply_view(img, out, spec_.view, scratch);
      else transform_.apply(img, out, job.epoch, example, spec_.train, scratch);
      break;
    } catch (const BadExample& e) {
      std::string why = e.what();
      const std::string src = data_.source(from);
      if (why.compare(0, src.size(), src) != 0) why = src + ": " + why;
      from = replacement_for(from, why);
    }
  }
  job.labels[row] = data_.label(example);
}

// Records `example` as unreadable (warning once) and returns the next example of its class
// in index order (cyclic) not known to be bad. Throws when strict or when none is left.
int64_t BatchLoader::replacement_for(int64_t example, const std::string& why) {
  if (spec_.strict) throw Error(cat(why, " (strict: unreadable examples are errors)"));
  const int32_t label = data_.label(example);
  const int64_t n = data_.size();
  std::lock_guard<std::mutex> lock(pool_->bad_mu);
  if (pool_->bad.insert(example).second) warn(cat("skipping ", why));
  for (int64_t k = 1; k < n; ++k) {
    const int64_t j = (example + k) % n;
    if (data_.label(j) == label && !pool_->bad.count(j)) return j;
  }
  throw Error(cat("every example of class ", label, " is unreadable (last: ", why, ")"));
}

}  // namespace owt
