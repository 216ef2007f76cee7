// Tests for core/safetensors: round trips, the on-disk layout, one error per malformed input,
// atomic writes under a killed writer, StWriter/StReader against the whole-file calls (byte for
// byte, message for message). Python's safetensors/torch compatibility was checked by hand.
#include "owt/core/safetensors.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <numeric>
#include <random>
#include <thread>

#include "owt/core/error.h"
#include "support/temp_dir.h"
#include "support/expect_error.h"

namespace owt {
namespace {

using test::error_of;

using test::TempDir;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file image: length prefix, header text, data bytes.
std::string image(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message of the owt::Error thrown by `f`, or a marker if none was thrown.
void expect_mentions(const std::string& msg, std::initializer_list<std::string> parts) {
  for (const std::string& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "expected '" << p << "' in: " << msg;
}

StTensor raw(std::string name, std::string dtype, std::vector<int64_t> shape,
             std::vector<uint8_t> data) {
  return StTensor{std::move(name), std::move(dtype), std::move(shape), std::move(data)};
}

StFile sample_file() {
  StFile f;
  f.metadata = {{"step", "1200"}, {"model", "layers:\n  - conv: {out: 8}\n"}, {"empty", ""}};
  const float w[6] = {1.f, -2.5f, 3.f, 1e-30f, -0.f, 6.25f};
  f.tensors.push_back(st_f32("conv1.weight", {2, 3}, w));  // (2, 3)
  const float s = 0.125f;
  f.tensors.push_back(st_f32("lr", {}, &s));             // scalar
  f.tensors.push_back(st_f32("zero", {0, 5}, nullptr));  // no bytes
  f.tensors.push_back(raw("mask", "U8", {3}, {1, 0, 255}));
  f.tensors.push_back(raw("half", "F16", {1, 2}, {0x00, 0x3c, 0x00, 0xc0}));
  f.tensors.push_back(raw("count", "I64", {1}, {7, 0, 0, 0, 0, 0, 0, 0x80}));
  f.tensors.push_back(raw("ids", "I32", {2, 1, 1}, {1, 2, 3, 4, 5, 6, 7, 8}));
  f.tensors.push_back(raw("bf", "BF16", {3}, {0x80, 0x3f, 0, 0, 0x80, 0xbf}));
  return f;
}

TEST(Safetensors, RoundTripKeepsEveryDtypeShapeAndMetadata) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const StFile in = sample_file();
  write_safetensors(path, in);
  const StFile out = read_safetensors(path);
  EXPECT_EQ(out.metadata, in.metadata);
  ASSERT_EQ(out.tensors.size(), in.tensors.size());
  for (size_t i = 1; i < out.tensors.size(); ++i)
    EXPECT_LT(out.tensors[i - 1].name, out.tensors[i].name);  // sorted by name
  for (const StTensor& t : in.tensors) {
    const StTensor* r = out.find(t.name);
    ASSERT_NE(r, nullptr) << t.name;
    EXPECT_EQ(r->dtype, t.dtype) << t.name;
    EXPECT_EQ(r->shape, t.shape) << t.name;
    EXPECT_EQ(r->data, t.data) << t.name;
  }
  EXPECT_EQ(out.find("nope"), nullptr);
  EXPECT_EQ(st_as_f32(*out.find("conv1.weight"), path),
            (std::vector<float>{1.f, -2.5f, 3.f, 1e-30f, -0.f, 6.25f}));
  EXPECT_EQ(st_as_f32(*out.find("lr"), path), std::vector<float>{0.125f});
  EXPECT_TRUE(out.find("zero")->data.empty());
  EXPECT_TRUE(st_as_f32(*out.find("zero"), path).empty());
}

TEST(Safetensors, EmptyFileRoundTripsAndOverwriteReplaces) {
  TempDir dir;
  const std::string path = dir.file("a.safetensors");
  write_safetensors(path, StFile{});
  StFile empty = read_safetensors(path);
  EXPECT_TRUE(empty.tensors.empty());
  EXPECT_TRUE(empty.metadata.empty());
  write_safetensors(path, sample_file());
  EXPECT_EQ(read_safetensors(path).tensors.size(), sample_file().tensors.size());
  // Only the target is left in the directory: no temp file.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(Safetensors, LayoutIsPaddedAlignedAndContiguous) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const StFile in = sample_file();
  write_safetensors(path, in);
  const std::string bytes = slurp(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_LE(8 + n, bytes.size());
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));  // padding is spaces
  size_t total = 0;
  for (const StTensor& t : in.tensors) total += t.data.size();
  EXPECT_EQ(bytes.size(), 8 + n + total);  // no gaps, nothing trailing
  // Larger elements first, so each tensor is aligned to its element size.
  const auto pos = [&](const std::string& name) { return header.find("\"" + name + "\""); };
  EXPECT_LT(pos("count"), pos("conv1.weight"));  // I64 before F32
  EXPECT_LT(pos("conv1.weight"), pos("half"));   // F32 before F16
  EXPECT_LT(pos("half"), pos("mask"));           // F16 before U8
  expect_mentions(header, {"\"__metadata__\":{",
                           "\"count\":{\"dtype\":\"I64\",\"shape\":[1],"
                           "\"data_offsets\":[0,8]}"});
}

// ---- malformed files ---------------------------------------------------------------------

struct BadCase {
  const char* label;
  std::string bytes;
  std::vector<std::string> expect;  // besides the path
};

std::string entry(const std::string& name, const std::string& body) {
  return "\"" + name + "\":{" + body + "}";
}

TEST(Safetensors, EveryMalformedFileIsAnErrorNamingPathAndTensor) {
  const std::string f32x2 = "\"dtype\":\"F32\",\"shape\":[2],";
  const std::string eight(8, '\x01'), twelve(12, '\x01');
  const std::vector<BadCase> cases = {
      {"shorter than 8 bytes", "abc", {"3 bytes", "too short"}},
      {"empty file", "", {"0 bytes", "too short"}},
      {"header length beyond file", le64(100) + "{}", {"header length 100", "larger than the 2"}},
      {"absurd header length", le64(~0ull) + "{}", {"header length 18446744073709551615"}},
      {"invalid JSON", image("{\"a\":", ""), {"not valid JSON", "parse error"}},
      {"empty header", image("", ""), {"not valid JSON"}},
      {"header not an object", image("[1,2]", ""), {"must be a JSON object", "array"}},
      {"entry not an object", image("{\"w\":3}", ""), {"tensor 'w'", "must be an object"}},
      {"missing dtype",
       image("{" + entry("w", "\"shape\":[2],\"data_offsets\":[0,8]") + "}", eight),
       {"tensor 'w'", "missing 'dtype'"}},
      {"missing shape",
       image("{" + entry("w", "\"dtype\":\"F32\",\"data_offsets\":[0,8]") + "}", eight),
       {"tensor 'w'", "missing 'shape'"}},
      {"missing data_offsets",
       image("{" + entry("w", f32x2.substr(0, f32x2.size() - 1)) + "}", eight),
       {"tensor 'w'", "missing 'data_offsets'"}},
      {"dtype not a string",
       image("{" + entry("w", "\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]") + "}", eight),
       {"tensor 'w'", "'dtype' must be a string"}},
      {"unknown dtype",
       image("{" + entry("w", "\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]") + "}",
             eight),
       {"tensor 'w'", "unknown dtype 'F31'", "F32"}},
      {"shape not a list",
       image("{" + entry("w", "\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]") + "}", eight),
       {"tensor 'w'", "'shape' must be a list of integers"}},
      {"fractional dim",
       image("{" + entry("w", "\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]") + "}",
             eight),
       {"tensor 'w'", "'shape' must be a list of integers"}},
      {"negative dim",
       image("{" + entry("w", "\"dtype\":\"F32\",\"shape\":[-2,-1],\"data_offsets\":[0,8]") + "}",
             eight),
       {"tensor 'w'", "negative dimension -2"}},
      {"offsets not a pair",
       image("{" + entry("w", f32x2 + "\"data_offsets\":[0]") + "}", eight),
       {"tensor 'w'", "'data_offsets' must be [begin, end]"}},
      {"negative offset",
       image("{" + entry("w", f32x2 + "\"data_offsets\":[-8,0]") + "}", eight),
       {"tensor 'w'", "'data_offsets' must be [begin, end]"}},
      {"offsets out of order",
       image("{" + entry("w", f32x2 + "\"data_offsets\":[8,0]") + "}", eight),
       {"tensor 'w'", "out of order"}},
      {"offsets overrun data",
       image("{" + entry("w", f32x2 + "\"data_offsets\":[0,8]") + "}", "\x01\x02\x03"),
       {"tensor 'w'", "overrun the data section of 3 bytes"}},
      {"size != shape x dtype",
       image("{" + entry("w", "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]") + "}",
             eight),
       {"tensor 'w'", "hold 8 bytes", "shape [3] x F32", "needs 12"}},
      {"shape product overflows",
       image(
           "{" +
               entry("w",
                     "\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]") +
               "}",
           eight),
       {"tensor 'w'", "needs an overflowing size"}},
      {"overlapping tensors",
       image("{" + entry("a", f32x2 + "\"data_offsets\":[0,8]") + "," +
                 entry("b", f32x2 + "\"data_offsets\":[4,12]") + "}",
             twelve),
       {"tensor 'b'", "overlap tensor 'a'"}},
      {"gap between tensors",
       image("{" + entry("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") + "," +
                 entry("b", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]") + "}",
             twelve),
       {"tensor 'b'", "gap of 4 bytes", "tensor 'a'"}},
      {"trailing bytes",
       image("{" + entry("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") + "}",
             eight),
       {"8 bytes but the tensors cover 4"}},
      {"duplicate tensor name",
       image("{" + entry("a", f32x2 + "\"data_offsets\":[0,8]") + "," +
                 entry("a", f32x2 + "\"data_offsets\":[0,8]") + "}",
             eight),
       {"duplicate tensor name 'a'"}},
      {"duplicate key in an entry",
       image("{" + entry("w", f32x2 + "\"dtype\":\"I32\",\"data_offsets\":[0,8]") + "}", eight),
       {"duplicate key 'dtype'", "'w'"}},
      {"metadata not an object",
       image("{\"__metadata__\":[1]}", ""),
       {"__metadata__ must be an object"}},
      {"metadata value not a string",
       image("{\"__metadata__\":{\"step\":3}}", ""),
       {"__metadata__ value of 'step' must be a string"}},
  };
  TempDir dir;
  int i = 0;
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string path = dir.write("bad" + std::to_string(i++) + ".safetensors", c.bytes);
    const std::string msg = error_of([&] { read_safetensors(path); });
    expect_mentions(msg, {path});
    for (const std::string& e : c.expect) expect_mentions(msg, {e});
    EXPECT_EQ(error_of([&] { StReader reader(path); }), msg) << "the ranged reader differs";
  }
}

TEST(Safetensors, MissingFileAndDirectoryAreErrors) {
  TempDir dir;
  const std::string missing = dir.file("nope.safetensors");
  expect_mentions(error_of([&] { read_safetensors(missing); }),
                  {missing, "cannot open", std::strerror(ENOENT)});
  expect_mentions(error_of([&] { read_safetensors(dir.path()); }),
                  {dir.path(), "not a regular file"});
  expect_mentions(error_of([&] { StReader r(missing); }), {missing, "cannot open"});
  expect_mentions(error_of([&] { StReader r(dir.path()); }), {dir.path(), "not a regular file"});
}

TEST(Safetensors, TruncatedCopyOfAValidFileIsAnError) {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  write_safetensors(good, sample_file());
  const std::string bytes = slurp(good);
  // Cut inside the data, inside the header, and inside the length prefix.
  for (size_t keep : {bytes.size() - 1, size_t{20}, size_t{5}}) {
    SCOPED_TRACE(keep);
    const std::string path = dir.write("cut.safetensors", bytes.substr(0, keep));
    expect_mentions(error_of([&] { read_safetensors(path); }), {path});
  }
}

TEST(Safetensors, WriteRejectsInvalidTensorsWithoutTouchingTheDisk) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const float one = 1.f;
  const struct {
    StTensor tensor;
    const char* expect;
  } cases[] = {
      {raw("w", "F31", {1}, {0, 0, 0, 0}), "unknown dtype 'F31'"},
      {raw("w", "F32", {2}, {0, 0, 0, 0}), "has 4 bytes"},
      {raw("w", "F32", {-1}, {}), "negative dimension"},
      {raw("__metadata__", "F32", {1}, {0, 0, 0, 0}), "reserved"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expect);
    StFile f;
    f.tensors.push_back(c.tensor);
    expect_mentions(error_of([&] { write_safetensors(path, f); }),
                    {path, "tensor '" + c.tensor.name + "'", c.expect});
  }
  StFile dup;
  dup.tensors = {st_f32("a", {1}, &one), st_f32("a", {1}, &one)};
  expect_mentions(error_of([&] { write_safetensors(path, dup); }), {path, "'a'", "duplicate"});
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Safetensors, WriteFailuresNameThePathAndLeaveNoTempFile) {
  TempDir dir;
  const std::string no_dir = dir.file("missing/ckpt.safetensors");
  expect_mentions(error_of([&] { write_safetensors(no_dir, sample_file()); }),
                  {no_dir, "cannot create temp file", std::strerror(ENOENT)});
  // Renaming onto a non-empty directory fails after the temp file was fully written.
  const std::string target = dir.file("taken");
  dir.write("taken/keep", "x");
  expect_mentions(error_of([&] { write_safetensors(target, sample_file()); }),
                  {target, "cannot rename temp file"});
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1);  // only "taken": the temp file was removed
  EXPECT_EQ(slurp(dir.file("taken/keep")), "x");
}

TEST(Safetensors, AsF32RejectsOtherDtypes) {
  const StTensor t = raw("ids", "I32", {1}, {1, 0, 0, 0});
  expect_mentions(error_of([&] { st_as_f32(t, "run/ckpt.safetensors"); }),
                  {"run/ckpt.safetensors", "tensor 'ids'", "expected dtype F32, got I32"});
  const StTensor bad = raw("w", "F32", {2}, {0, 0, 0, 0});
  expect_mentions(error_of([&] { st_as_f32(bad, "p"); }), {"p: tensor 'w'", "has 4 bytes"});
}

// ---- streaming writer and ranged reader -----------------------------------------------------

std::vector<StTensorInfo> infos_of(const StFile& f) {
  std::vector<StTensorInfo> out;
  for (const StTensor& t : f.tensors) out.push_back(StTensorInfo{t.name, t.dtype, t.shape});
  return out;
}

// Files whose layout exercises every rule: several dtypes, scalars, empty tensors, odd sizes
// (so that tensors of one size class end at odd offsets before the next class begins).
std::vector<StFile> layout_cases() {
  std::vector<StFile> cases = {sample_file(), StFile{}};
  StFile odd;
  odd.metadata = {{"a", "1"}, {"zz", "x\ny"}};
  std::mt19937 rng(5);
  auto bytes = [&](size_t n) {
    std::vector<uint8_t> v(n);
    for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
    return v;
  };
  odd.tensors.push_back(raw("u8_13", "U8", {13}, bytes(13)));
  odd.tensors.push_back(raw("bool_3", "BOOL", {3, 1}, {1, 0, 1}));
  odd.tensors.push_back(raw("f16_7", "F16", {7}, bytes(14)));
  odd.tensors.push_back(raw("bf16_scalar", "BF16", {}, bytes(2)));
  odd.tensors.push_back(raw("f64_3x5", "F64", {3, 5}, bytes(120)));
  odd.tensors.push_back(raw("i64_empty", "I64", {4, 0}, {}));
  odd.tensors.push_back(raw("f32_odd", "F32", {3, 3, 3}, bytes(108)));
  odd.tensors.push_back(raw("a_i32", "I32", {5}, bytes(20)));
  odd.tensors.push_back(raw("f8", "F8_E4M3", {9}, bytes(9)));
  odd.tensors.push_back(raw("u16_1", "U16", {1}, bytes(2)));
  cases.push_back(odd);
  StFile only_metadata;
  only_metadata.metadata = {{"step", "3"}};
  cases.push_back(only_metadata);
  return cases;
}

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

TEST(SafetensorsStream, WriterMakesTheFileOfWriteSafetensorsByteForByte) {
  // Size and FNV-1a of each layout case as written by write_safetensors before it was built on
  // StWriter (commit d9afe38): the layout itself is pinned, not only the two writers' agreement.
  const std::pair<size_t, uint64_t> pinned[] = {{625, 0x79d41af7fe8bff7dull},
                                                {16, 0x5b1a33d7c17a261full},
                                                {979, 0x056dfd1daf5e649dull},
                                                {40, 0x128fd97386e22497ull}};
  TempDir dir;
  int n = 0;
  for (const StFile& f : layout_cases()) {
    SCOPED_TRACE("case " + std::to_string(n));
    const std::string whole = dir.file("whole" + std::to_string(n) + ".safetensors");
    write_safetensors(whole, f);
    const std::string expected = slurp(whole);
    EXPECT_EQ(expected.size(), pinned[n].first);
    EXPECT_EQ(fnv1a(expected), pinned[n].second);

    // Sequential appends, tensors in reverse declaration order, pieces of 1, 2, 3, ... bytes.
    const std::string seq = dir.file("seq" + std::to_string(n) + ".safetensors");
    {
      StWriter w(seq, f.metadata, infos_of(f));
      for (size_t i = f.tensors.size(); i-- > 0;) {
        const std::vector<uint8_t>& d = f.tensors[i].data;
        for (size_t at = 0, step = 1; at < d.size(); at += step, ++step)
          w.append(i, d.data() + at, std::min(step, d.size() - at));
      }
      w.commit();
    }
    EXPECT_TRUE(slurp(seq) == expected) << "sequential pieces";

    // By offset, in shuffled order, pieces of 3 bytes.
    const std::string shuffled = dir.file("pw" + std::to_string(n) + ".safetensors");
    {
      StWriter w(shuffled, f.metadata, infos_of(f));
      std::vector<std::pair<size_t, size_t>> pieces;
      for (size_t i = 0; i < f.tensors.size(); ++i)
        for (size_t at = 0; at < f.tensors[i].data.size(); at += 3) pieces.emplace_back(i, at);
      std::shuffle(pieces.begin(), pieces.end(), std::mt19937(n));
      for (auto [i, at] : pieces) {
        const std::vector<uint8_t>& d = f.tensors[i].data;
        w.write(i, at, d.data() + at, std::min<size_t>(3, d.size() - at));
      }
      // The layout it reports is the file's.
      const StReader r(whole);
      for (const StTensorInfo& t : w.tensors()) {
        const StTensorInfo* in_file = r.find(t.name);
        ASSERT_NE(in_file, nullptr) << t.name;
        EXPECT_EQ(t.begin, in_file->begin) << t.name;
        EXPECT_EQ(t.end, in_file->end) << t.name;
      }
      w.commit();
    }
    EXPECT_TRUE(slurp(shuffled) == expected) << "pieces by offset";
    ++n;
  }
  // Only the finished files are left: no temp files.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, 3 * n);
}

TEST(SafetensorsStream, WriterRejectsWhatWriteSafetensorsRejectsAndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const struct {
    StTensorInfo tensor;
    const char* expect;
  } cases[] = {
      {{"w", "F31", {1}}, "unknown dtype 'F31'"},
      {{"w", "F32", {-1}}, "negative dimension"},
      {{"__metadata__", "F32", {1}}, "reserved"},
      {{"w", "F32", {int64_t{1} << 62, 8}}, "too large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expect);
    expect_mentions(error_of([&] { StWriter w(path, {}, {c.tensor}); }),
                    {path, "tensor '" + c.tensor.name + "'", c.expect});
  }
  expect_mentions(error_of([&] { StWriter w(path, {}, {{"a", "F32", {1}}, {"a", "F32", {1}}}); }),
                  {path, "'a'", "duplicate"});
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));

  const uint8_t four[4] = {1, 2, 3, 4};
  {
    StWriter w(path, {}, {{"a", "F32", {2}}, {"b", "U8", {3}}});
    expect_mentions(error_of([&] { w.write(0, 6, four, 4); }), {path, "tensor 'a'", "bytes [6, +4)"});
    expect_mentions(error_of([&] { w.write(2, 0, four, 1); }), {path, "no tensor #2"});
    w.write(0, 0, four, 4);
    w.write(1, 0, four, 3);
    // Half of 'a' never arrived: commit refuses, and the temp file goes.
    expect_mentions(error_of([&] { w.commit(); }), {path, "tensor 'a'", "4 of its 8 bytes"});
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
    expect_mentions(error_of([&] { w.write(0, 4, four, 4); }), {path, "discarded"});
  }
  {
    StWriter w(path, {}, {{"a", "U8", {4}}});
    w.write(0, 0, four, 2);
    EXPECT_FALSE(std::filesystem::is_empty(dir.path()));  // the temp file
  }  // never committed: the destructor removes it
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsStream, ReaderReadsAnyRangeOfOneTensor) {
  TempDir dir;
  int n = 0;
  for (const StFile& f : layout_cases()) {
    SCOPED_TRACE("case " + std::to_string(n));
    const std::string path = dir.file("r" + std::to_string(n++) + ".safetensors");
    write_safetensors(path, f);
    const StFile whole = read_safetensors(path);
    const StReader r(path);
    EXPECT_EQ(r.metadata(), whole.metadata);
    ASSERT_EQ(r.tensors().size(), whole.tensors.size());
    for (size_t i = 0; i < whole.tensors.size(); ++i) {
      const StTensor& t = whole.tensors[i];
      const StTensorInfo& info = r.tensors()[i];  // both sorted by name
      EXPECT_EQ(info.name, t.name);
      EXPECT_EQ(info.dtype, t.dtype);
      EXPECT_EQ(info.shape, t.shape);
      ASSERT_EQ(info.bytes(), t.data.size());
      EXPECT_EQ(r.read_tensor(info).data, t.data);
      for (uint64_t at = 0; at <= info.bytes(); ++at)
        for (uint64_t len = 0; at + len <= info.bytes(); len += 5) {
          std::vector<uint8_t> got(len);
          r.read(info, at, got.data(), len);
          EXPECT_TRUE(std::equal(got.begin(), got.end(), t.data.begin() + at)) << t.name << " @" << at;
        }
      uint8_t one;
      expect_mentions(error_of([&] { r.read(info, info.bytes(), &one, 1); }),
                      {path, "tensor '" + t.name + "'", "cannot read bytes"});
    }
    EXPECT_EQ(r.find("nope"), nullptr);
  }
  // A file cut short after the header was read: the range read names the path.
  const std::string path = dir.file("cut.safetensors");
  write_safetensors(path, sample_file());
  const StReader r(path);
  ASSERT_EQ(::truncate(path.c_str(), 8), 0);
  const StTensorInfo& t = *r.find("conv1.weight");
  std::vector<uint8_t> buf(t.bytes());
  expect_mentions(error_of([&] { r.read(t, 0, buf.data(), buf.size()); }), {path, "end of file"});
}

// The fuzz corpus and every crash input found so far (tests/fuzz), each also cut short and with
// bytes flipped: the ranged reader accepts exactly what read_safetensors accepts, with the same
// message, and reads the same bytes.
TEST(SafetensorsStream, ReaderAgreesWithReadSafetensorsOnTheFuzzInputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> inputs;
  for (const char* sub : {"tests/fuzz/corpus/safetensors", "tests/fuzz/regressions/safetensors"}) {
    const fs::path d = fs::path(OWT_SOURCE_DIR) / sub;
    if (fs::is_directory(d))
      for (const auto& e : fs::recursive_directory_iterator(d))
        if (e.is_regular_file()) inputs.push_back(slurp(e.path().string()));
  }
  ASSERT_GE(inputs.size(), 4u) << "the safetensors fuzz corpus is missing";
  std::vector<std::string> variants;
  std::mt19937 rng(11);
  for (const std::string& in : inputs) {
    variants.push_back(in);
    for (size_t keep : {size_t{0}, size_t{7}, size_t{9}, in.size() / 2, in.size() - 1})
      if (keep < in.size()) variants.push_back(in.substr(0, keep));
    for (int flips = 0; flips < 40 && !in.empty(); ++flips) {
      std::string v = in;
      v[rng() % v.size()] ^= static_cast<char>(1 + rng() % 255);
      variants.push_back(v);
    }
  }
  TempDir dir;
  int accepted = 0, rejected = 0;
  for (size_t i = 0; i < variants.size(); ++i) {
    SCOPED_TRACE("variant " + std::to_string(i));
    const std::string path = dir.write("v.safetensors", variants[i]);
    std::string whole_error, ranged_error;
    StFile whole;
    try {
      whole = read_safetensors(path);
    } catch (const Error& e) {
      whole_error = e.what();
    }
    try {
      const StReader r(path);
      ASSERT_TRUE(whole_error.empty()) << "the ranged reader accepts what read_safetensors refuses: "
                                       << whole_error;
      EXPECT_EQ(r.metadata(), whole.metadata);
      ASSERT_EQ(r.tensors().size(), whole.tensors.size());
      for (size_t t = 0; t < whole.tensors.size(); ++t)
        EXPECT_EQ(r.read_tensor(r.tensors()[t]).data, whole.tensors[t].data);
      ++accepted;
    } catch (const Error& e) {
      ranged_error = e.what();
      EXPECT_EQ(ranged_error, whole_error);
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

// ---- atomicity ---------------------------------------------------------------------------

StFile big_file(size_t bytes) {
  StFile f;
  f.metadata["step"] = "2";
  f.tensors.push_back(
      raw("big", "U8", {static_cast<int64_t>(bytes)}, std::vector<uint8_t>(bytes, 7)));
  return f;
}

void expect_previous_intact(const std::string& path, const StFile& previous) {
  const StFile now = read_safetensors(path);
  EXPECT_EQ(now.metadata, previous.metadata);
  ASSERT_EQ(now.tensors.size(), previous.tensors.size());
  for (size_t i = 0; i < now.tensors.size(); ++i)
    EXPECT_EQ(now.tensors[i].data, previous.find(now.tensors[i].name)->data);
}

TEST(Safetensors, WriterKilledMidWriteLeavesThePreviousFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const StFile previous = sample_file();
  write_safetensors(path, previous);

  const size_t big = size_t{128} << 20;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string msg = error_of([&] { write_safetensors(path, big_file(big)); });
    _exit(msg == "<no error thrown>" ? 0 : 1);
  }
  // Kill the writer as soon as its temp file holds 1 MiB: long before 128 MiB are written.
  const std::string tmp = path + ".tmp." + std::to_string(child);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  struct stat st {};
  while (!(::stat(tmp.c_str(), &st) == 0 && st.st_size >= (1 << 20)) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer finished first";
  ASSERT_EQ(::stat(tmp.c_str(), &st), 0);
  EXPECT_LT(static_cast<size_t>(st.st_size), big) << "the kill should land mid-write";
  expect_previous_intact(path, previous);
}

TEST(Safetensors, WriterDyingAtAFileSizeLimitLeavesThePreviousFile) {
  // Deterministic kill point: RLIMIT_FSIZE makes the kernel kill the writer with SIGXFSZ
  // exactly when the temp file reaches 64 KiB.
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const StFile previous = sample_file();
  write_safetensors(path, previous);
  for (bool ignore_signal : {false, true}) {
    SCOPED_TRACE(ignore_signal ? "SIGXFSZ ignored: write fails with EFBIG" : "killed by SIGXFSZ");
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      rlimit lim{64 << 10, 64 << 10};
      ::setrlimit(RLIMIT_FSIZE, &lim);
      ::signal(SIGXFSZ, ignore_signal ? SIG_IGN : SIG_DFL);
      const std::string msg = error_of([&] { write_safetensors(path, big_file(1 << 20)); });
      const std::string tmp = path + ".tmp." + std::to_string(::getpid());
      const bool ok = msg.find(path) != std::string::npos &&
                      msg.find("cannot write temp file") != std::string::npos &&
                      msg.find(std::strerror(EFBIG)) != std::string::npos &&
                      ::access(tmp.c_str(), F_OK) != 0;
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    if (ignore_signal) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "expected an owt::Error naming the path and EFBIG, and the temp file removed";
    } else {
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);
    }
    expect_previous_intact(path, previous);
  }
}

}  // namespace
}  // namespace owt
