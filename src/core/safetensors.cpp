// safetensors reader/writer (include/owt/core/safetensors.h): the JSON header through
// nlohmann::json, the bytes through POSIX I/O so that every failure carries its errno text,
// and the write goes to a temp file that is fsynced and renamed over the target.
#include "owt/core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "owt/core/error.h"
#include "owt/core/limits.h"

namespace owt {

// The file format is little-endian; data vectors hold the host's bytes unchanged.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "owt assumes a little-endian host");

namespace {

using Json = nlohmann::json;

constexpr const char* kKnownDtypes =
    "BOOL, U8, I8, F8_E4M3, F8_E5M2, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64";

std::string errno_text() { return std::strerror(errno); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// product(shape) * elem_size, or false on overflow (dims already known to be >= 0).
bool byte_size(const std::vector<int64_t>& shape, int elem_size, uint64_t* out) {
  uint64_t n = static_cast<uint64_t>(elem_size);
  for (int64_t d : shape) {
    uint64_t ud = static_cast<uint64_t>(d);
    if (ud != 0 && n > std::numeric_limits<uint64_t>::max() / ud) return false;
    n *= ud;
  }
  *out = n;
  return true;
}

// Closes the descriptor on scope exit unless it was closed (and checked) explicitly.
struct Fd {
  int fd_ = -1;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Reads exactly `n` bytes at `offset`; a short file is an error naming `path`.
void read_exact(int fd, uint64_t offset, void* dst, uint64_t n, const std::string& path) {
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
    ssize_t got = ::pread(fd, p, chunk, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(cat(path, ": read failed at byte ", offset, ": ", errno_text()));
    if (got == 0) throw Error(cat(path, ": unexpected end of file at byte ", offset));
    p += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
}

// Writes all `n` bytes; returns false with errno set on failure.
bool write_all(int fd, const void* src, size_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  while (n > 0) {
    ssize_t put = ::write(fd, p, std::min<size_t>(n, 1u << 30));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return false;
    p += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

// Parses the header, reporting the first duplicate key (nlohmann silently keeps the last).
Json parse_header(const std::string& text, const std::string& path) {
  std::vector<std::set<std::string>> open_objects;
  std::string entry, duplicate;
  auto on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (open_objects.size() == 1) entry = key;
      if (!open_objects.back().insert(key).second && duplicate.empty())
        duplicate = open_objects.size() == 1
                        ? cat("duplicate tensor name '", key, "' in the header")
                        : cat("duplicate key '", key, "' in header entry '", entry, "'");
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, on_event);
  } catch (const Json::exception& e) {
    throw Error(cat(path, ": safetensors header is not valid JSON: ", e.what()));
  }
  if (!duplicate.empty()) throw Error(cat(path, ": ", duplicate));
  if (!header.is_object())
    throw Error(cat(path, ": safetensors header must be a JSON object, got ", header.type_name()));
  return header;
}

// A non-negative integer JSON value, or false.
bool as_u64(const Json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

struct Entry {
  StTensor tensor;
  uint64_t begin = 0, end = 0;
};

// Validates one header entry on its own (dtype, shape, offsets within `data_size`, size).
Entry parse_entry(const std::string& name, const Json& v, uint64_t data_size,
                  const std::string& path) {
  const std::string where = cat(path, ": tensor '", name, "': ");
  if (!v.is_object())
    throw Error(cat(where, "entry must be an object with dtype, shape and data_offsets, got ",
                    v.type_name()));
  Entry e;
  e.tensor.name = name;
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) throw Error(cat(where, "missing '", key, "'"));

  const Json& dtype = v["dtype"];
  if (!dtype.is_string()) throw Error(cat(where, "'dtype' must be a string, got ", dtype.dump()));
  e.tensor.dtype = dtype.get<std::string>();
  int elem_size = st_dtype_size(e.tensor.dtype);
  if (elem_size == 0)
    throw Error(
        cat(where, "unknown dtype '", e.tensor.dtype, "' (expected one of ", kKnownDtypes, ")"));

  const Json& shape = v["shape"];
  if (!shape.is_array())
    throw Error(cat(where, "'shape' must be a list of integers, got ", shape.dump()));
  for (const Json& d : shape) {
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      throw Error(cat(where, "negative dimension ", d.get<int64_t>(), " in shape ", shape.dump()));
    uint64_t ud = 0;
    if (!as_u64(d, &ud))
      throw Error(cat(where, "'shape' must be a list of integers, got ", shape.dump()));
    if (ud > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error(cat(where, "dimension ", ud, " in shape ", shape.dump(), " is too large"));
    e.tensor.shape.push_back(static_cast<int64_t>(ud));
  }

  const Json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_u64(offsets[0], &e.begin) ||
      !as_u64(offsets[1], &e.end))
    throw Error(cat(where, "'data_offsets' must be [begin, end] with non-negative integers, got ",
                    offsets.dump()));
  if (e.begin > e.end)
    throw Error(cat(where, "data_offsets ", offsets.dump(), " are out of order (begin > end)"));
  if (e.end > data_size)
    throw Error(cat(where, "data_offsets ", offsets.dump(), " overrun the data section of ",
                    data_size, " bytes"));

  uint64_t expected = 0;
  bool fits = byte_size(e.tensor.shape, elem_size, &expected);
  if (!fits || expected != e.end - e.begin)
    throw Error(cat(where, "data_offsets ", offsets.dump(), " hold ", e.end - e.begin,
                    " bytes, but shape ", shape_text(e.tensor.shape), " x ", e.tensor.dtype, " (",
                    elem_size, " bytes each) needs ",
                    (fits ? std::to_string(expected) : std::string("an overflowing size"))));
  return e;
}

// The tensors must tile the data section exactly, as the Python library requires.
void check_layout(std::vector<Entry*> entries, uint64_t data_size, const std::string& path) {
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end, a->tensor.name) < std::tie(b->begin, b->end, b->tensor.name);
  });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : entries) {
    const std::string where =
        cat(path, ": tensor '", e->tensor.name, "': data_offsets [", e->begin, ", ", e->end, "] ");
    if (e->begin < cursor)
      throw Error(cat(where, "overlap tensor '", prev->tensor.name, "', which ends at ", cursor));
    if (e->begin > cursor)
      throw Error(cat(where, "leave a gap of ", e->begin - cursor, " bytes after ",
                      prev ? cat("tensor '", prev->tensor.name, "'") : std::string("the header"),
                      " (tensors must be contiguous)"));
    cursor = e->end;
    prev = e;
  }
  if (cursor != data_size)
    throw Error(cat(path, ": the data section has ", data_size, " bytes but the tensors cover ",
                    cursor, " (trailing bytes)"));
}

// Everything write_safetensors rejects before touching the disk.
void check_for_write(const StFile& file, const std::string& path) {
  std::set<std::string> names;
  for (const StTensor& t : file.tensors) {
    const std::string where = cat(path, ": cannot write tensor '", t.name, "': ");
    if (t.name == "__metadata__") throw Error(cat(where, "the name is reserved"));
    if (!names.insert(t.name).second) throw Error(cat(where, "duplicate name"));
    int elem_size = st_dtype_size(t.dtype);
    if (elem_size == 0)
      throw Error(cat(where, "unknown dtype '", t.dtype, "' (expected one of ", kKnownDtypes, ")"));
    for (int64_t d : t.shape)
      if (d < 0) throw Error(cat(where, "negative dimension in shape ", shape_text(t.shape)));
    uint64_t expected = 0;
    if (!byte_size(t.shape, elem_size, &expected) || expected != t.data.size())
      throw Error(cat(where, "has ", t.data.size(), " bytes, expected shape ", shape_text(t.shape),
                      " x ", t.dtype, " = ", expected));
  }
}

std::string build_header(const std::vector<const StTensor*>& order, const StFile& file,
                         const std::string& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  uint64_t offset = 0;
  for (const StTensor* t : order) {
    uint64_t end = offset + t->data.size();
    header[t->name] = {{"dtype", t->dtype}, {"shape", t->shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    throw Error(
        cat(path, ": cannot write header (tensor and metadata names must be UTF-8): ", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

const StTensor* StFile::find(const std::string& name) const {
  for (const StTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

int st_dtype_size(const std::string& dtype) {
  static const std::map<std::string, int> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"U16", 2},  {"I16", 2}, {"F16", 2}, {"BF16", 2},    {"U32", 4},
      {"I32", 4},  {"F32", 4}, {"U64", 8}, {"I64", 8},     {"F64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

StFile read_safetensors(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd_ < 0) throw Error(cat(path, ": cannot open safetensors file: ", errno_text()));
  struct stat st;
  if (::fstat(f.fd_, &st) != 0) throw Error(cat(path, ": cannot stat: ", errno_text()));
  if (!S_ISREG(st.st_mode)) throw Error(cat(path, ": not a regular file"));
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    throw Error(cat(path, ": file has ", file_size,
                    " bytes, too short for the 8-byte header length of a safetensors file"));

  uint8_t len_bytes[8];
  read_exact(f.fd_, 0, len_bytes, 8, path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > limits::kSafetensorsHeader)
    throw Error(cat(path, ": header length ", header_len, " is more than the ", limits::kSafetensorsHeader,
                    " bytes a safetensors header may have (corrupt, or not a safetensors file)"));
  if (header_len > file_size - 8)
    throw Error(cat(path, ": header length ", header_len, " is larger than the ", file_size - 8,
                    " bytes that follow it (truncated, or not a safetensors file)"));
  std::string text(static_cast<size_t>(header_len), '\0');
  read_exact(f.fd_, 8, text.data(), header_len, path);
  const Json header = parse_header(text, path);

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  StFile file;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object())
        throw Error(cat(path, ": __metadata__ must be an object of strings, got ",
                        item.value().type_name()));
      for (const auto& kv : item.value().items()) {
        if (!kv.value().is_string())
          throw Error(cat(path, ": __metadata__ value of '", kv.key(), "' must be a string, got ",
                          kv.value().dump()));
        file.metadata[kv.key()] = kv.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(item.key(), item.value(), data_size, path));
  }
  std::vector<Entry*> layout;
  for (Entry& e : entries) layout.push_back(&e);
  check_layout(layout, data_size, path);

  for (Entry& e : entries) {
    e.tensor.data.resize(static_cast<size_t>(e.end - e.begin));
    read_exact(f.fd_, data_start + e.begin, e.tensor.data.data(), e.end - e.begin, path);
    file.tensors.push_back(std::move(e.tensor));
  }
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const StTensor& a, const StTensor& b) { return a.name < b.name; });
  return file;
}

void write_safetensors(const std::string& path, const StFile& file) {
  check_for_write(file, path);
  std::vector<const StTensor*> order;
  for (const StTensor& t : file.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const StTensor* a, const StTensor* b) {
    int sa = st_dtype_size(a->dtype), sb = st_dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  const std::string header = build_header(order, file, path);
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i)
    len_bytes[i] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i));

  const std::string tmp = cat(path, ".tmp.", ::getpid());
  Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (f.fd_ < 0) throw Error(cat(path, ": cannot create temp file ", tmp, ": ", errno_text()));
  auto fail = [&](const char* verb, const char* rest = "") {  // what failed on the temp file
    const int err = errno;
    std::string msg =
        cat(path, ": cannot ", verb, " temp file ", tmp, rest, ": ", std::strerror(err));
    if (f.fd_ >= 0) ::close(f.fd_);
    f.fd_ = -1;
    ::unlink(tmp.c_str());
    throw Error(msg);
  };
  if (!write_all(f.fd_, len_bytes, 8) || !write_all(f.fd_, header.data(), header.size()))
    fail("write");
  for (const StTensor* t : order)
    if (!write_all(f.fd_, t->data.data(), t->data.size())) fail("write");
  if (::fsync(f.fd_) != 0) fail("fsync");
  int fd = f.fd_;
  f.fd_ = -1;
  if (::close(fd) != 0) fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename", " onto it");

  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd_ < 0 || ::fsync(d.fd_) != 0)
    throw Error(cat(path, ": written, but cannot fsync its directory ", dir, ": ", errno_text()));
}

StTensor st_f32(std::string name, std::vector<int64_t> shape, const float* data) {
  uint64_t bytes = 0;
  for (int64_t d : shape)
    if (d < 0)
      throw Error(
          cat("st_f32: tensor '", name, "': negative dimension in shape ", shape_text(shape)));
  if (!byte_size(shape, 4, &bytes))
    throw Error(cat("st_f32: tensor '", name, "': shape ", shape_text(shape), " is too large"));
  StTensor t{std::move(name), "F32", std::move(shape), std::vector<uint8_t>(bytes)};
  if (bytes) std::memcpy(t.data.data(), data, bytes);
  return t;
}

std::vector<float> st_as_f32(const StTensor& tensor, const std::string& path) {
  const std::string where = cat(path, ": tensor '", tensor.name, "': ");
  if (tensor.dtype != "F32") throw Error(cat(where, "expected dtype F32, got ", tensor.dtype));
  uint64_t bytes = 0;
  if (!byte_size(tensor.shape, 4, &bytes) || bytes != tensor.data.size())
    throw Error(cat(where, "has ", tensor.data.size(), " bytes, expected shape ",
                    shape_text(tensor.shape), " x F32"));
  std::vector<float> out(bytes / 4);
  if (bytes) std::memcpy(out.data(), tensor.data.data(), bytes);
  return out;
}

}  // namespace owt
