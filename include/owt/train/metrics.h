// Run-directory outputs: metrics.jsonl (one JSON object per line, README "Training") and the live
// per-epoch progress line (bar, loss, accuracy, images/s, ETA) on stderr; a progress bar for
// other long work (evaluating a big set, writing a big checkpoint).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace owt {

struct MetricsRecord {
  std::string kind;  // "train" or "eval"
  int64_t epoch = 0, step = 0;
  double loss = 0, top1 = 0, top5 = 0, images_per_s = 0, lr = 0, data_wait_s = 0;
  uint64_t comm_bytes = 0;
  int64_t skipped = 0;  // unreadable examples skipped so far (data.strict: false)
  std::map<std::string, uint64_t> comm_bytes_by_op;
};

class MetricsLog {
 public:
  MetricsLog() = default;
  explicit MetricsLog(const std::string& path);  // appends
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const MetricsRecord& r);

 private:
  std::FILE* file_ = nullptr;
};

class ProgressLine {
 public:
  // `enabled`: print the epoch summaries; `live`: also redraw a bar while a terminal shows it.
  ProgressLine(bool enabled, bool live);
  void start_epoch(int64_t epoch, int64_t epochs, int64_t steps);
  // After each step: running mean loss and accuracy of the epoch so far.
  void update(int64_t step_in_epoch, double loss, double top1, double images_per_s);
  void finish_epoch(const std::string& summary);

 private:
  bool enabled_, live_;
  int64_t epoch_ = 0, epochs_ = 0, steps_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// Whether a progress display may redraw a line: it is `enabled` (no --no-progress) and stderr
// is a terminal (not CI, a pipe or a log file).
bool progress_is_live(bool enabled);

// "what [########................]  37%  3712/10000  ETA 0:12" redrawn on one line (at most 5
// times a second) for long work that is not an epoch. Draws only when `live`, and only once
// the work has run `delay_s` seconds, so short work prints nothing; finish() (or the
// destructor) clears the line it drew.
class ProgressBar {
 public:
  enum class Units { Count, Bytes };  // "3712/10000" or "1.20/2.50 GiB"
  ProgressBar(std::string what, double total, bool live, Units units = Units::Count,
              double delay_s = 1.0, std::FILE* out = stderr);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  void update(double done);
  // Replaces the bar with "what: text" (a phase whose progress cannot be measured).
  void status(const std::string& text);
  void finish();
  bool drawn() const { return drawn_; }

 private:
  std::string what_;
  double total_;
  bool live_;
  Units units_;
  double delay_s_;
  std::FILE* out_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

std::string format_duration(double seconds);  // m:ss or h:mm:ss
std::string format_bytes(double bytes);        // "512 B", "3.4 MiB", "1.20 GiB"
std::string fixed(double value, int digits);    // printf %.<digits>f

}  // namespace owt
