// check_dataset decodes every example (in parallel), counting classes and image sizes and
// collecting unreadable files; format_report prints it for `owt data check`.
#include "owt/data/check.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <sstream>

#include "owt/core/error.h"

namespace owt {

CheckReport check_dataset(const Dataset& data, const std::string& split, int threads,
                          const std::function<void(int64_t done)>& progress) {
  CheckReport r;
  r.split = split;
  r.examples = data.size();
  r.class_names = data.class_names();
  r.per_class.assign(r.class_names.size(), 0);
  r.skipped_at_open = data.skipped_at_open();
  for (int64_t i = 0; i < data.size(); ++i) ++r.per_class[static_cast<size_t>(data.label(i))];
  std::vector<std::pair<int64_t, std::string>> bad;
  std::atomic<int64_t> done{0};
#pragma omp parallel num_threads(std::max(1, threads))
  {
    Image img;
    std::map<std::pair<int64_t, int64_t>, int64_t> sizes;
    std::vector<std::pair<int64_t, std::string>> my_bad;
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < data.size(); ++i) {
      try {
        data.read_image(i, img);
        ++sizes[{img.h, img.w}];
      } catch (const BadExample& e) {
        my_bad.emplace_back(i, e.what());
      }
      const int64_t now = ++done;
      if (progress && omp_get_thread_num() == 0) progress(now);  // the bar is not thread-safe
    }
#pragma omp critical(owt_check_merge)
    {
      for (const auto& s : sizes) r.sizes[s.first] += s.second;
      bad.insert(bad.end(), my_bad.begin(), my_bad.end());
    }
  }
  if (progress && data.size() > 0) progress(data.size());
  std::sort(bad.begin(), bad.end());
  for (auto& b : bad) r.unreadable.push_back(std::move(b.second));
  return r;
}

std::string format_report(const CheckReport& r, int max_bad) {
  std::ostringstream os;
  const size_t k = r.class_names.size();
  os << r.split << ": " << r.examples << " examples, " << k << " classes\n";
  auto row = [&](size_t c) { os << "  " << c << "  " << r.class_names[c] << ": " << r.per_class[c] << "\n"; };
  if (k <= 50) {
    for (size_t c = 0; c < k; ++c) row(c);
  } else {
    auto [lo, hi] = std::minmax_element(r.per_class.begin(), r.per_class.end());
    os << "  examples per class: min " << *lo << " (" << r.class_names[lo - r.per_class.begin()]
       << "), max " << *hi << " (" << r.class_names[hi - r.per_class.begin()] << ")\n";
  }
  for (size_t c = 0; c < k; ++c)
    if (r.per_class[c] == 0) os << "  class " << r.class_names[c] << " has no examples\n";
  // Image sizes: the most common first, at most five, then the range.
  std::vector<std::pair<int64_t, std::pair<int64_t, int64_t>>> by_count;
  for (const auto& s : r.sizes) by_count.emplace_back(-s.second, s.first);
  std::sort(by_count.begin(), by_count.end());
  os << "  image sizes (HxW):";
  for (size_t i = 0; i < by_count.size() && i < 5; ++i)
    os << " " << by_count[i].second.first << "x" << by_count[i].second.second << " ("
       << -by_count[i].first << ")";
  if (by_count.size() > 5) {
    int64_t min_side = INT64_MAX, max_side = 0;
    for (const auto& s : r.sizes) {
      min_side = std::min({min_side, s.first.first, s.first.second});
      max_side = std::max({max_side, s.first.first, s.first.second});
    }
    os << " ... " << by_count.size() << " sizes, sides " << min_side << ".." << max_side;
  }
  os << "\n";
  if (r.skipped_at_open) os << "  files left out (not images): " << r.skipped_at_open << "\n";
  os << "  unreadable: " << r.unreadable.size() << "\n";
  for (size_t i = 0; i < r.unreadable.size() && static_cast<int>(i) < max_bad; ++i)
    os << "    " << r.unreadable[i] << "\n";
  if (static_cast<int>(r.unreadable.size()) > max_bad)
    os << "    ... and " << r.unreadable.size() - max_bad << " more\n";
  return os.str();
}

std::vector<std::string> dataset_splits(const std::string& format, const std::string& path) {
  namespace fs = std::filesystem;
  if (format == "packed" && fs::is_regular_file(path)) return {fs::path(path).stem().string()};
  if (format != "folder" && format != "packed") return {"train", "test"};
  std::vector<std::string> out;
  const char* suffix = format == "packed" ? ".owtpack" : "";
  for (const char* s : {"train", "val", "test"})
    if (fs::exists(fs::path(path) / (std::string(s) + suffix))) out.push_back(s);
  // A folder of class folders (torchvision's ImageFolder root) is one split.
  if (out.empty() && format == "folder") return {kWholeFolder};
  if (out.empty()) throw Error(cat(path, ": no train, val or test ", format == "packed" ? "index" : "folder"));
  return out;
}

}  // namespace owt
