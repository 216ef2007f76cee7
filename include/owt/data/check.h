// `owt data check`: decodes every example of a data set and reports examples per class, image
// sizes and unreadable files, for every format.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "owt/data/dataset.h"

namespace owt {

struct CheckReport {
  std::string split;
  int64_t examples = 0;
  std::vector<std::string> class_names;
  std::vector<int64_t> per_class;                        // (classes)
  std::map<std::pair<int64_t, int64_t>, int64_t> sizes;  // (H, W) -> images
  std::vector<std::string> unreadable;                   // one message per bad example
  int64_t skipped_at_open = 0;                           // non-image files left out
};

// Reads every example of `data` on `threads` threads. `progress`, when given, is called on
// one thread with the examples read so far (0 < done <= data.size(), never decreasing), at most
// once per example, the last call with done == data.size().
CheckReport check_dataset(const Dataset& data, const std::string& split, int threads,
                          const std::function<void(int64_t done)>& progress = {});

// The report as text: a header line, a class table (a summary past 50 classes), sizes and
// up to `max_bad` unreadable files.
std::string format_report(const CheckReport& r, int max_bad = 20);

// The splits of a data set at `path` in `format` that exist ("train", "test"); for a folder
// without train, val or test folders, kWholeFolder (its class folders are one split).
std::vector<std::string> dataset_splits(const std::string& format, const std::string& path);

}  // namespace owt
