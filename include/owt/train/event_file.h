// TensorBoard event files: Event protobuf messages (scalars and text) in TFRecord framing with
// masked CRC32C, written without a protobuf library (five message types, encoded by hand).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace owt {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `n` bytes, continuing `crc`.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// TFRecord's masked form: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);

// Serialized tensorflow.Event messages (field numbers of tensorboard/compat/proto/event.proto
// and summary.proto; fields in increasing number order, as protobuf itself writes them).
namespace tb {
// Event{wall_time, step, file_version}: the first record of every event file.
std::string file_version_event(double wall_time, const std::string& version = "brain.Event:2");
// Event{wall_time, step, summary{value{tag, simple_value}}}.
std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value);
// Event{wall_time, step, summary{value{tag, tensor: DT_STRING [1] {text},
// metadata{plugin_data{plugin_name: "text"}}}}}: what TensorBoard's Text tab shows (markdown).
std::string text_event(double wall_time, int64_t step, const std::string& tag, const std::string& text);
// One TFRecord: length (uint64 LE), masked CRC of the length, data, masked CRC of the data.
std::string record(const std::string& data);
}  // namespace tb

// Writes one event file `<dir>/events.out.tfevents.<seconds>.<host>` (a suffix .1, .2, ...
// when that name is taken, e.g. by a run resumed in the same second): never appends to an
// existing file, so a file cut short by a killed run stays as it was and the next run writes
// a fresh one beside it; TensorBoard reads the files of a directory in name order.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::string& dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void add_scalar(const std::string& tag, int64_t step, double value);
  void add_text(const std::string& tag, int64_t step, const std::string& text);
  // Makes everything written so far visible to a TensorBoard reading the file.
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Seconds since the Unix epoch, with microseconds (an Event's wall_time).
double wall_time_now();

}  // namespace owt
