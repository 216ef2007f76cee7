// Run-directory outputs: metrics.jsonl (one JSON object per line, README "Training") and the live
// per-epoch progress line (bar, loss, accuracy, images/s, ETA) on stderr.
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

std::string format_duration(double seconds);  // m:ss or h:mm:ss
std::string fixed(double value, int digits);    // printf %.<digits>f

}  // namespace owt
