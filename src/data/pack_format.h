// The packed data set format (little-endian, versioned). Index <split>.owtpack:
//   "OWTPACK1", u32 version, u32 classes, u32 shards, u64 records,
//   classes x {u32 len, name}, shards x {u32 len, file name beside the index},
//   records x {u32 shard, u64 offset, u32 size, u32 label, u32 h, u32 w, u32 len, source name},
//   "OWTPEND1".
// Shard <split>-NNNNN.owtshard: "OWTSHRD1" then encoded images (JPEG/PNG bytes) back to back.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace owt::pack {

constexpr char kIndexMagic[9] = "OWTPACK1";
constexpr char kIndexEnd[9] = "OWTPEND1";
constexpr char kShardMagic[9] = "OWTSHRD1";
constexpr uint32_t kVersion = 1;
constexpr const char* kIndexSuffix = ".owtpack";

struct Record {
  uint32_t shard = 0;
  uint64_t offset = 0;
  uint32_t size = 0, label = 0, h = 0, w = 0;
  std::string name;  // the source file, relative to the split folder
};

inline void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline void put_str(std::string& s, const std::string& v) {
  put_u32(s, static_cast<uint32_t>(v.size()));
  s += v;
}

}  // namespace owt::pack
