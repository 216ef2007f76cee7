// Issue 16, item 2, in core: a small file that claims a huge size is refused with an error
// naming the file and the field before anything is allocated (safetensors header length and
// shapes), shapes whose element count overflows 64 bits are errors, and ConfigMap bounds every
// number it hands out.
#include <gtest/gtest.h>

#include <string>

#include "owt/core/config_map.h"
#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "owt/core/safetensors.h"
#include "owt/core/shape.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt {
namespace {

using test::expect_error;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

TEST(Limits, SafetensorsHeaderLengthIsBoundedBeforeReading) {
  test::TempDir dir;
  // 10 bytes that claim a 1 TiB header.
  const std::string path = dir.write("huge_header.safetensors", le64(uint64_t{1} << 40) + "{}");
  expect_error([&] { read_safetensors(path); }, {path, "header length 1099511627776", "100000000"});
  // Just over the library's 100 MB limit is refused as well, even when the file is that long.
  const std::string over = dir.write("over.safetensors", le64(limits::kSafetensorsHeader + 1) + "{}");
  expect_error([&] { read_safetensors(over); }, {over, "header length 100000001"});
}

TEST(Limits, SafetensorsShapesCannotClaimMoreThanTheFileHolds) {
  test::TempDir dir;
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})";
  const std::string path = dir.write("huge_shape.safetensors", le64(header.size()) + header);
  expect_error([&] { read_safetensors(path); }, {path, "tensor 'w'", "overflowing size"});
  const std::string big = R"({"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}})";
  const std::string p2 = dir.write("huge_offsets.safetensors", le64(big.size()) + big);
  expect_error([&] { read_safetensors(p2); }, {p2, "tensor 'w'", "overrun the data section of 0 bytes"});
}

TEST(Limits, ShapeElementCountOverflowIsAnError) {
  EXPECT_EQ((Shape{1 << 20, 1 << 20, 1 << 20}.numel()), int64_t{1} << 60);
  expect_error([] { (Shape{int64_t{1} << 32, int64_t{1} << 32}).numel(); },
               {"shape (4294967296, 4294967296)", "64-bit"});
}

TEST(Limits, ConfigMapBoundsEveryNumber) {
  YAML::Node node = load_yaml_string(
      "big: 2147483648\nok: -2147483647\nnan: nan\ninf: -inf\nhuge: 1e31\nseed: 18446744073709551615\n"
      "neg_seed: -1\nlist: [1, 2147483648]\n",
      "t.yaml");
  ConfigMap m(node, "t.yaml", "test");
  expect_error([&] { m.get_int("big"); }, {"t.yaml:1", "field 'big'", "out of range"});
  EXPECT_EQ(m.get_int("ok"), -2147483647);
  expect_error([&] { m.get_float("nan"); }, {"t.yaml:3", "field 'nan'", "finite"});
  expect_error([&] { m.get_float("inf"); }, {"t.yaml:4", "field 'inf'", "finite"});
  expect_error([&] { m.get_float("huge"); }, {"t.yaml:5", "field 'huge'", "1e30"});
  EXPECT_EQ(m.get_u64("seed", 1), 18446744073709551615u);
  expect_error([&] { m.get_u64("neg_seed", 1); }, {"t.yaml:7", "field 'neg_seed'"});
  EXPECT_EQ(m.get_u64("absent", 5), 5u);
  expect_error([&] { m.get_int_list("list"); }, {"t.yaml:8", "field 'list'", "out of range"});
}

TEST(Limits, YamlTextIsBoundedBeforeParsing) {
  expect_error([] { load_yaml_string(std::string(limits::kModelFileBytes + 1, ' '), "big.yaml"); },
               {"big.yaml", "1048577 bytes", "at most 1048576"});
  expect_error([] { read_model_file("/nonexistent/model.yaml"); }, {"/nonexistent/model.yaml", "cannot open"});
  // Deep nesting is refused by yaml-cpp's depth guard, not by a stack overflow.
  const std::string deep = "input: " + std::string(100000, '[') + std::string(100000, ']');
  expect_error([&] { load_yaml_string(deep, "deep.yaml"); }, {"deep.yaml:1:", "invalid YAML: nested", "levels deep"});
}

}  // namespace
}  // namespace owt
