// TensorBoard event files written by hand: a protobuf wire-format encoder for the few fields
// an Event needs (varints, fixed64/fixed32, length-delimited), TFRecord framing and CRC-32C.
#include "owt/train/event_file.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "owt/core/error.h"

namespace owt {
namespace {

// CRC-32C lookup table, one byte at a time (reflected Castagnoli polynomial).
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// ---- protobuf wire format ------------------------------------------------------------------
// A field key is (number << 3) | wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
}

void put_little_endian(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

void put_double(std::string& out, int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, 1);
  put_little_endian(out, bits, 8);
}

void put_float(std::string& out, int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, 5);
  put_little_endian(out, bits, 4);
}

void put_int(std::string& out, int field, int64_t v) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));  // int64: negative values take ten bytes
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary).
std::string event_head(double wall_time, int64_t step) {
  std::string e;
  put_double(e, 1, wall_time);
  if (step != 0) put_int(e, 2, step);  // proto3: a zero scalar is not written
  return e;
}

// Summary: value = 1 (repeated Summary.Value).
std::string event_with_value(double wall_time, int64_t step, const std::string& value) {
  std::string summary;
  put_bytes(summary, 1, value);
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto& table = crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace tb {

std::string file_version_event(double wall_time, const std::string& version) {
  std::string e = event_head(wall_time, 0);
  put_bytes(e, 3, version);
  return e;
}

// Summary.Value: tag = 1 (string), simple_value = 2 (float).
std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  put_bytes(v, 1, tag);
  put_float(v, 2, value);
  return event_with_value(wall_time, step, v);
}

// Summary.Value: tag = 1, tensor = 8 (TensorProto), metadata = 9 (SummaryMetadata).
// TensorProto: dtype = 1 (DT_STRING = 7), tensor_shape = 2 (TensorShapeProto: dim = 2,
// Dim: size = 1), string_val = 8. SummaryMetadata: plugin_data = 1 (PluginData: plugin_name = 1).
std::string text_event(double wall_time, int64_t step, const std::string& tag, const std::string& text) {
  std::string dim, shape, tensor, plugin, metadata, v;
  put_int(dim, 1, 1);
  put_bytes(shape, 2, dim);
  put_int(tensor, 1, 7);
  put_bytes(tensor, 2, shape);
  put_bytes(tensor, 8, text);
  put_bytes(plugin, 1, "text");
  put_bytes(metadata, 1, plugin);
  put_bytes(v, 1, tag);
  put_bytes(v, 8, tensor);
  put_bytes(v, 9, metadata);
  return event_with_value(wall_time, step, v);
}

std::string record(const std::string& data) {
  std::string out, length;
  put_little_endian(length, data.size(), 8);
  out += length;
  put_little_endian(out, masked_crc32c(length.data(), length.size()), 4);
  out += data;
  put_little_endian(out, masked_crc32c(data.data(), data.size()), 4);
  return out;
}

}  // namespace tb

double wall_time_now() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() / 1e6;
}

EventFileWriter::EventFileWriter(const std::string& dir) {
  char host[256] = "localhost";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  for (char* c = host; *c; ++c)
    if (*c == '/') *c = '_';
  const double now = wall_time_now();
  const std::string base =
      cat(dir, "/events.out.tfevents.", static_cast<long long>(now), ".", host);
  // "x": create, never open a file that exists (another run's, or one cut short).
  for (int n = 0; !file_ && n < 1000; ++n) {
    path_ = n == 0 ? base : cat(base, ".", n);
    file_ = std::fopen(path_.c_str(), "wbx");
    if (!file_ && errno != EEXIST)
      throw Error(cat(path_, ": cannot create the TensorBoard event file: ", std::strerror(errno)));
  }
  if (!file_) throw Error(cat(base, ": cannot create the TensorBoard event file: 1000 names taken"));
  write(tb::file_version_event(now));
  flush();
}

EventFileWriter::~EventFileWriter() {
  if (file_) std::fclose(file_);
}

void EventFileWriter::write(const std::string& event) {
  const std::string r = tb::record(event);
  if (std::fwrite(r.data(), 1, r.size(), file_) != r.size())
    throw Error(cat(path_, ": cannot write: ", std::strerror(errno)));
}

void EventFileWriter::add_scalar(const std::string& tag, int64_t step, double value) {
  write(tb::scalar_event(wall_time_now(), step, tag, static_cast<float>(value)));
}

void EventFileWriter::add_text(const std::string& tag, int64_t step, const std::string& text) {
  write(tb::text_event(wall_time_now(), step, tag, text));
}

void EventFileWriter::flush() {
  if (std::fflush(file_) != 0) throw Error(cat(path_, ": cannot write: ", std::strerror(errno)));
}

}  // namespace owt
