// MetricsLog writes JSON lines; ProgressLine redraws one terminal line per epoch (or prints
// only the epoch summary when stderr is not a terminal, e.g. under CI or mpirun); ProgressBar
// does the same for other long work, and only once it has taken a moment.
#include "owt/train/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "owt/core/error.h"

namespace owt {

MetricsLog::MetricsLog(const std::string& path) : file_(std::fopen(path.c_str(), "a")) {
  if (!file_) throw Error(cat(path, ": cannot open for writing"));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const MetricsRecord& r) {
  if (!file_) return;
  std::fprintf(file_,
               "{\"kind\": \"%s\", \"epoch\": %lld, \"step\": %lld, \"loss\": %.6f, \"top1\": %.6f, "
               "\"top5\": %.6f, \"images_per_s\": %.1f, \"lr\": %.6g, \"data_wait_s\": %.3f, "
               "\"comm_bytes\": %llu, \"skipped\": %lld",
               r.kind.c_str(), static_cast<long long>(r.epoch), static_cast<long long>(r.step),
               r.loss, r.top1, r.top5, r.images_per_s, r.lr, r.data_wait_s,
               static_cast<unsigned long long>(r.comm_bytes), static_cast<long long>(r.skipped));
  if (!r.comm_bytes_by_op.empty()) {
    std::fprintf(file_, ", \"comm_bytes_by_op\": {");
    bool first = true;
    for (const auto& kv : r.comm_bytes_by_op) {
      std::fprintf(file_, "%s\"%s\": %llu", first ? "" : ", ", kv.first.c_str(),
                   static_cast<unsigned long long>(kv.second));
      first = false;
    }
    std::fprintf(file_, "}");
  }
  std::fprintf(file_, "}\n");
  std::fflush(file_);
}

std::string format_duration(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : bytes < 10 ? "%.2f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

ProgressLine::ProgressLine(bool enabled, bool live)
    : enabled_(enabled), live_(enabled && live && isatty(STDERR_FILENO)) {}

void ProgressLine::start_epoch(int64_t epoch, int64_t epochs, int64_t steps) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_ = steps;
  start_ = last_print_ = std::chrono::steady_clock::now();
}

void ProgressLine::update(int64_t step_in_epoch, double loss, double top1, double images_per_s) {
  if (!live_) return;
  auto now = std::chrono::steady_clock::now();
  if (step_in_epoch < steps_ && now - last_print_ < std::chrono::milliseconds(200)) return;
  last_print_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double frac = steps_ ? static_cast<double>(step_in_epoch) / steps_ : 1.0;
  int filled = static_cast<int>(frac * 24);
  std::string bar(filled, '#');
  bar.resize(24, '.');
  double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  std::fprintf(stderr, "\repoch %lld/%lld [%s] %3.0f%% loss %.4f acc %5.2f%% %6.0f img/s ETA %s  ",
               static_cast<long long>(epoch_), static_cast<long long>(epochs_), bar.c_str(),
               100 * frac, loss, 100 * top1, images_per_s, format_duration(eta).c_str());
  std::fflush(stderr);
}

void ProgressLine::finish_epoch(const std::string& summary) {
  if (!enabled_) return;
  if (live_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", summary.c_str());
  std::fflush(stderr);
}

bool progress_is_live(bool enabled) { return enabled && isatty(STDERR_FILENO); }

ProgressBar::ProgressBar(std::string what, double total, bool live, Units units, double delay_s,
                         std::FILE* out)
    : what_(std::move(what)), total_(total), live_(live), units_(units), delay_s_(delay_s), out_(out),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(double done) {
  if (!live_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (elapsed < delay_s_) return;
  if (drawn_ && now - last_print_ < std::chrono::milliseconds(200) && done < total_) return;
  last_print_ = now;
  const double frac = total_ > 0 ? std::min(1.0, done / total_) : 1.0;
  std::string bar(static_cast<size_t>(frac * 24), '#');
  bar.resize(24, '.');
  const std::string amount =
      units_ == Units::Bytes ? cat(format_bytes(done), " of ", format_bytes(total_))
                             : cat(static_cast<long long>(done), "/", static_cast<long long>(total_));
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  std::fprintf(out_, "\r%s [%s] %3.0f%%  %s  ETA %s  ", what_.c_str(), bar.c_str(), 100 * frac,
               amount.c_str(), format_duration(eta).c_str());
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::status(const std::string& text) {
  if (!live_ || std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() < delay_s_)
    return;
  std::fprintf(out_, "\r\033[K%s: %s", what_.c_str(), text.c_str());
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (!drawn_) return;
  std::fprintf(out_, "\r\033[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace owt
