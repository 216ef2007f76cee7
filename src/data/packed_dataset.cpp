// PackedDataset: reads a packed set (pack_format.h). Opening validates the whole index (sizes
// bounded by core/limits.h before allocating, offsets against shard sizes, labels, names that
// cannot leave the index's folder, the end marker) with errors naming the file; reading an
// example is one pread from its shard and a decode.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"
#include "pack_format.h"

namespace owt {
namespace {

namespace fs = std::filesystem;

// Bounds-checked little-endian reader over the index bytes.
class Reader {
 public:
  Reader(const std::string& bytes, const std::string& path) : b_(bytes), path_(path) {}
  void need(uint64_t n, const char* what) const {
    if (n > b_.size() - at_)
      throw Error(cat(path_, ": truncated packed index: ", what, " at byte ", at_, " needs ", n,
                      " bytes, ", b_.size() - at_, " left"));
  }
  uint64_t uint(int bytes, const char* what) {
    need(bytes, what);
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b_[at_ + i])) << (8 * i);
    at_ += bytes;
    return v;
  }
  uint32_t u32(const char* what) { return static_cast<uint32_t>(uint(4, what)); }
  uint64_t u64(const char* what) { return uint(8, what); }
  std::string str(const char* what) {
    uint32_t n = u32(what);
    need(n, what);
    std::string s = b_.substr(at_, n);
    at_ += n;
    return s;
  }
  std::string raw(size_t n, const char* what) {
    need(n, what);
    std::string s = b_.substr(at_, n);
    at_ += n;
    return s;
  }
  size_t left() const { return b_.size() - at_; }

 private:
  const std::string& b_;
  const std::string& path_;
  size_t at_ = 0;
};

// A name read from the index: one line of printable text, at most limits::kNameBytes.
bool printable(const std::string& s) {
  if (s.empty() || s.size() > limits::kNameBytes) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return false;
  return true;
}

// One path component: no separator, not "." or "..", so dir / name stays inside dir.
bool plain_file_name(const std::string& s) {
  return printable(s) && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\\') == std::string::npos;
}

// A relative path below the split folder: no absolute path and no ".." component.
bool relative_below(const std::string& s) {
  if (!printable(s) || s[0] == '/') return false;
  for (const auto& part : fs::path(s))
    if (part == "..") return false;
  return true;
}

class PackedDataset : public Dataset {
 public:
  explicit PackedDataset(const std::string& index) : index_(index) {
    std::error_code ec;
    const uint64_t index_size = fs::file_size(index, ec);
    if (ec) throw Error(cat(index, ": cannot open the packed index (", ec.message(), ")"));
    if (index_size > limits::kPackIndexBytes)
      throw Error(cat(index, ": the packed index is ", index_size, " bytes; owt reads indexes of at most ",
                      limits::kPackIndexBytes, " bytes"));
    std::ifstream in(index, std::ios::binary);
    if (!in) throw Error(cat(index, ": cannot open the packed index"));
    std::string bytes(static_cast<size_t>(index_size), '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<size_t>(in.gcount()));
    Reader r(bytes, index);
    if (bytes.size() < 8 || bytes.compare(0, 8, pack::kIndexMagic) != 0)
      throw Error(cat(index, ": not a packed owt index (expected magic ", pack::kIndexMagic, ")"));
    r.raw(8, "magic");
    uint32_t version = r.u32("version");
    if (version != pack::kVersion)
      throw Error(cat(index, ": packed index version ", version, "; this owt reads version ",
                      pack::kVersion));
    uint32_t classes = r.u32("class count"), shards = r.u32("shard count");
    uint64_t records = r.u64("record count");
    if (classes == 0 || records == 0) throw Error(cat(index, ": empty packed data set"));
    if (classes > limits::kPackClasses)
      throw Error(cat(index, ": class count ", classes, " is more than the ", limits::kPackClasses,
                      " owt reads"));
    // Every count is bounded by the bytes left before anything is allocated for it: a name
    // takes at least 4 bytes, a record at least 32.
    if (classes > r.left() / 4 || shards > r.left() / 4 || records > r.left() / 32)
      throw Error(cat(index, ": truncated packed index: ", classes, " classes, ", shards,
                      " shards and ", records, " records declared in ", r.left(), " bytes"));
    const fs::path dir = fs::path(index).parent_path();
    for (uint32_t k = 0; k < classes; ++k) {
      classes_.push_back(r.str("class name"));
      if (!plain_file_name(classes_.back()))
        throw Error(cat(index, ": class name ", k, " is not a plain folder name (1 to ",
                        limits::kNameBytes, " printable characters, no '/', not '.' or '..')"));
    }
    std::vector<uint64_t> shard_size;
    for (uint32_t s = 0; s < shards; ++s) {
      // A shard is a file beside the index: a name from the file never reaches elsewhere.
      const std::string name = r.str("shard name");
      if (!plain_file_name(name))
        throw Error(cat(index, ": shard name ", s, " is not a plain file name beside the index "
                        "(no '/', not '.' or '..')"));
      std::string path = (dir / name).string();
      std::error_code ec;
      uint64_t size = fs::file_size(path, ec);
      if (ec) throw Error(cat(index, ": shard ", path, " is missing (", ec.message(), ")"));
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw Error(cat(path, ": cannot open the shard"));
      fds_.push_back(fd);
      char magic[8];
      if (::pread(fd, magic, 8, 0) != 8 || std::memcmp(magic, pack::kShardMagic, 8) != 0)
        throw Error(cat(path, ": not an owt shard (expected magic ", pack::kShardMagic, ")"));
      shard_paths_.push_back(path);
      shard_size.push_back(size);
    }
    records_.resize(records);
    bool same = true;
    for (uint64_t i = 0; i < records; ++i) {
      pack::Record& rec = records_[i];
      rec.shard = r.u32("record shard");
      rec.offset = r.u64("record offset");
      rec.size = r.u32("record size");
      rec.label = r.u32("record label");
      rec.h = r.u32("record height");
      rec.w = r.u32("record width");
      rec.name = r.str("record name");
      if (rec.shard >= shards)
        throw Error(cat(index, ": record ", i, " is in shard ", rec.shard, " of ", shards));
      if (rec.label >= classes)
        throw Error(cat(index, ": record ", i, " has label ", rec.label, " of ", classes, " classes"));
      if (!relative_below(rec.name))
        throw Error(cat(index, ": record ", i, " has a source name that is not a relative path "
                        "below the split folder"));
      if (rec.h == 0 || rec.w == 0 || rec.h > limits::kImageSide || rec.w > limits::kImageSide ||
          int64_t{rec.h} * rec.w > limits::kImagePixels)
        throw Error(cat(index, ": record ", i, " (", rec.name, ") declares a ", rec.h, "x", rec.w,
                        " image; owt reads images of at most ", limits::kImageSide,
                        " pixels a side and ", limits::kImagePixels, " in all"));
      if (rec.size > limits::kImageFileBytes)
        throw Error(cat(index, ": record ", i, " (", rec.name, ") is ", rec.size,
                        " bytes; images are at most ", limits::kImageFileBytes, " bytes"));
      // offset + size compared without overflow (offset is a u64 from the file).
      if (rec.offset < 8 || rec.size == 0 || rec.offset > shard_size[rec.shard] ||
          rec.size > shard_size[rec.shard] - rec.offset)
        throw Error(cat(index, ": record ", i, " (", rec.name, ") spans bytes ", rec.offset, "..",
                        rec.offset + rec.size, " of ", shard_paths_[rec.shard], ", which has ",
                        shard_size[rec.shard], " (truncated shard?)"));
      same = same && rec.h == records_[0].h && rec.w == records_[0].w;
    }
    if (r.left() != 8 || r.raw(8, "end marker") != pack::kIndexEnd)
      throw Error(cat(index, ": packed index does not end with its end marker (truncated or "
                      "trailing bytes)"));
    if (same) shape_ = Shape{3, records_[0].h, records_[0].w};
  }

  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  Shape example_shape() const override { return shape_; }
  int classes() const override { return static_cast<int>(classes_.size()); }
  std::vector<std::string> class_names() const override { return classes_; }
  int32_t label(int64_t i) const override { return static_cast<int32_t>(records_[i].label); }
  std::string source(int64_t i) const override {
    const pack::Record& r = records_[i];
    return cat(shard_paths_[r.shard], " at byte ", r.offset, " (record ", i, ", ", r.name, ")");
  }
  void read(int64_t i, float* out) const override {
    Image img;
    read_image(i, img);
    if (shape_[1] == 0 || img.h != shape_[1] || img.w != shape_[2])
      throw BadExample(cat(source(i), ": image is ", img.h, "x", img.w, ", not ", shape_[1], "x",
                           shape_[2]));
    std::copy(img.pixels.begin(), img.pixels.end(), out);
  }
  void read_image(int64_t i, Image& out) const override {
    const pack::Record& r = records_[i];
    std::string bytes(r.size, '\0');
    ssize_t got = ::pread(fds_[r.shard], bytes.data(), r.size, static_cast<off_t>(r.offset));
    if (got != static_cast<ssize_t>(r.size))
      throw BadExample(cat(source(i), ": short read (", got, " of ", r.size, " bytes)"));
    try {
      decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
    } catch (const BadExample& e) {
      throw BadExample(cat(source(i), ": ", e.what()));
    }
  }

 private:
  std::string index_;
  std::vector<std::string> classes_, shard_paths_;
  struct Fds {  // closes the shards, also when the constructor throws
    std::vector<int> v;
    ~Fds() {
      for (int fd : v) ::close(fd);
    }
    void push_back(int fd) { v.push_back(fd); }
    int operator[](size_t i) const { return v[i]; }
  } fds_;
  std::vector<pack::Record> records_;
  Shape shape_{3, 0, 0};
};

}  // namespace

std::unique_ptr<Dataset> open_packed_dataset(const std::string& dir, const std::string& split) {
  if (!have_image_codec()) throw_no_image_codec();
  std::vector<std::string> tries{split};
  if (split == "test") tries = {"val", "test"};
  if (fs::is_regular_file(dir)) return std::make_unique<PackedDataset>(dir);  // an index itself
  for (const std::string& t : tries) {
    std::string index = (fs::path(dir) / (t + pack::kIndexSuffix)).string();
    if (fs::is_regular_file(index)) return std::make_unique<PackedDataset>(index);
  }
  throw Error(cat("packed data set ", dir, ": no ", (fs::path(dir) / (tries[0] + pack::kIndexSuffix)).string(),
                  tries.size() > 1 ? cat(" or ", tries[1], pack::kIndexSuffix) : "",
                  " (make one with `owt data pack SRC ", dir, "`)"));
}

}  // namespace owt
