// TensorBoard event files byte for byte: CRC-32C test vectors, Event messages against the bytes
// TensorBoard's own protobuf classes serialize (event_pb2, summary_pb2, tensor_pb2), and the
// TFRecord framing and file naming of EventFileWriter. tests/tools reads a run's events back
// with TensorBoard's EventAccumulator.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "owt/core/error.h"
#include "owt/train/event_file.h"
#include "support/cli_runner.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

namespace fs = std::filesystem;

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

uint64_t little_endian(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

// The records of a TFRecord file, each checked against its two masked CRCs.
std::vector<std::string> read_records(const std::string& path) {
  const std::string bytes = read_text(path);
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    EXPECT_LE(at + 12, bytes.size());
    const uint64_t n = little_endian(bytes, at, 8);
    EXPECT_EQ(little_endian(bytes, at + 8, 4), masked_crc32c(bytes.data() + at, 8));
    const std::string data = bytes.substr(at + 12, n);
    EXPECT_EQ(little_endian(bytes, at + 12 + n, 4), masked_crc32c(data.data(), data.size()));
    out.push_back(data);
    at += 12 + n + 4;
  }
  EXPECT_EQ(at, bytes.size());
  return out;
}

TEST(EventFile, Crc32cTestVectors) {
  // RFC 3720 (iSCSI), appendix B.4, and the common check value of "123456789".
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(ascending.data(), 32), 0x46DD794Eu);
  // Continuing a CRC equals the CRC of the whole.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
  // TensorBoard's masked_crc32c(b"123456789").
  EXPECT_EQ(masked_crc32c("123456789", 9), 0xC78AB0E5u);
}

// The expected bytes are Event(...).SerializeToString() of tensorboard.compat.proto.
TEST(EventFile, EventsMatchTensorBoardsProtobufBytes) {
  EXPECT_EQ(tb::file_version_event(1700000000.25),
            from_hex("0900001040fc54d9411a0d627261696e2e4576656e743a32"));
  EXPECT_EQ(tb::scalar_event(1700000001.5, 300, "train/loss", 0.125f),
            from_hex("0900006040fc54d94110ac022a130a110a0a747261696e2f6c6f7373150000003e"));
  EXPECT_EQ(tb::text_event(1700000002.0, 7, "config", "hi\n"),
            from_hex("0900008040fc54d94110072a230a210a06636f6e666967420d0807120412020801420368690a4a"
                     "080a060a0474657874"));
}

TEST(EventFile, RecordFraming) {
  const std::string r = tb::record("abc");
  ASSERT_EQ(r.size(), 8 + 4 + 3 + 4u);
  EXPECT_EQ(little_endian(r, 0, 8), 3u);
  EXPECT_EQ(little_endian(r, 8, 4), masked_crc32c(r.data(), 8));
  EXPECT_EQ(r.substr(12, 3), "abc");
  EXPECT_EQ(little_endian(r, 15, 4), masked_crc32c("abc", 3));
}

TEST(EventFile, WriterNamesFilesAndNeverAppends) {
  TempDir dir;
  std::string first, second;
  {
    EventFileWriter a(dir.path());
    first = a.path();
    EXPECT_EQ(fs::path(first).filename().string().rfind("events.out.tfevents.", 0), 0u) << first;
    a.add_scalar("train/loss", 10, 0.5);
    a.add_text("config", 0, "name: x\n");
    a.flush();
    // Flushed: the records are in the file before the writer closes.
    EXPECT_EQ(read_records(first).size(), 3u);
    EventFileWriter b(dir.path());  // the same second: another name
    second = b.path();
    EXPECT_NE(first, second);
  }
  std::vector<std::string> records = read_records(first);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  EXPECT_NE(records[1].find("train/loss"), std::string::npos);
  EXPECT_EQ(read_records(second).size(), 1u);  // only its file_version event
  // A file cut short (a killed run) is left alone; the next writer makes its own.
  const std::string bytes = read_text(first);
  std::ofstream(first, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  EventFileWriter c(dir.path());
  c.add_scalar("train/loss", 20, 0.25);
  c.flush();
  EXPECT_EQ(read_text(first).size(), bytes.size() - 5);
  EXPECT_EQ(read_records(c.path()).size(), 2u);
}

TEST(EventFile, UnwritableDirectoryIsAnError) {
  TempDir dir;
  EXPECT_THROW(EventFileWriter(dir.file("no/such/dir")), Error);
}

}  // namespace
}  // namespace owt::test
