// Integers as the bytes a file stores them in (big- or little-endian), for tests that build
// headers by hand: PNG's IHDR, TIFF directories, packed-set indexes.
#pragma once
#include <cstdint>
#include <string>

namespace owt::test {

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
inline std::string le16(uint16_t v) { return {static_cast<char>(v), static_cast<char>(v >> 8)}; }
inline std::string le32(uint32_t v) {
  return le16(static_cast<uint16_t>(v)) + le16(static_cast<uint16_t>(v >> 16));
}
inline std::string le64(uint64_t v) {
  return le32(static_cast<uint32_t>(v)) + le32(static_cast<uint32_t>(v >> 32));
}

}  // namespace owt::test
