// Dataset basics shared by every reader: default class names and `open_dataset`, which maps
// the model file's `data.format` to a reader.
#include "owt/data/dataset.h"

#include "owt/core/error.h"

namespace owt {

std::vector<std::string> Dataset::class_names() const {
  std::vector<std::string> names;
  for (int c = 0; c < classes(); ++c) names.push_back(std::to_string(c));
  return names;
}

std::unique_ptr<Dataset> open_dataset(const std::string& format, const std::string& dir,
                                      const std::string& split) {
  if (format == "idx") return open_idx_dataset(dir, split);
  throw Error(cat("data.format: unknown dataset format '", format, "' for ", dir,
                  " (supported: idx)"));
}

}  // namespace owt
