// safetensors reader/writer (include/owt/core/safetensors.h): the JSON header through
// nlohmann::json, the bytes through POSIX I/O (pread/pwrite) so that every failure carries its
// errno text; StWriter writes a temp file that is fsynced and renamed over the target, StReader
// validates the header and reads ranges. write/read_safetensors are thin users of the two.
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

// Writes all `n` bytes at `offset`; returns false with errno set on failure.
bool pwrite_all(int fd, uint64_t offset, const void* src, uint64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  while (n > 0) {
    ssize_t put = ::pwrite(fd, p, static_cast<size_t>(std::min<uint64_t>(n, 1u << 30)),
                           static_cast<off_t>(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return false;
    p += put;
    offset += static_cast<uint64_t>(put);
    n -= static_cast<uint64_t>(put);
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

// Validates one header entry on its own (dtype, shape, offsets within `data_size`, size).
StTensorInfo parse_entry(const std::string& name, const Json& v, uint64_t data_size,
                         const std::string& path) {
  const std::string where = cat(path, ": tensor '", name, "': ");
  if (!v.is_object())
    throw Error(cat(where, "entry must be an object with dtype, shape and data_offsets, got ",
                    v.type_name()));
  StTensorInfo e;
  e.name = name;
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) throw Error(cat(where, "missing '", key, "'"));

  const Json& dtype = v["dtype"];
  if (!dtype.is_string()) throw Error(cat(where, "'dtype' must be a string, got ", dtype.dump()));
  e.dtype = dtype.get<std::string>();
  int elem_size = st_dtype_size(e.dtype);
  if (elem_size == 0)
    throw Error(
        cat(where, "unknown dtype '", e.dtype, "' (expected one of ", kKnownDtypes, ")"));

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
    e.shape.push_back(static_cast<int64_t>(ud));
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
  bool fits = byte_size(e.shape, elem_size, &expected);
  if (!fits || expected != e.end - e.begin)
    throw Error(cat(where, "data_offsets ", offsets.dump(), " hold ", e.end - e.begin,
                    " bytes, but shape ", shape_text(e.shape), " x ", e.dtype, " (",
                    elem_size, " bytes each) needs ",
                    (fits ? std::to_string(expected) : std::string("an overflowing size"))));
  return e;
}

// The tensors must tile the data section exactly, as the Python library requires.
void check_layout(std::vector<const StTensorInfo*> entries, uint64_t data_size,
                  const std::string& path) {
  std::sort(entries.begin(), entries.end(), [](const StTensorInfo* a, const StTensorInfo* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  uint64_t cursor = 0;
  const StTensorInfo* prev = nullptr;
  for (const StTensorInfo* e : entries) {
    const std::string where =
        cat(path, ": tensor '", e->name, "': data_offsets [", e->begin, ", ", e->end, "] ");
    if (e->begin < cursor)
      throw Error(cat(where, "overlap tensor '", prev->name, "', which ends at ", cursor));
    if (e->begin > cursor)
      throw Error(cat(where, "leave a gap of ", e->begin - cursor, " bytes after ",
                      prev ? cat("tensor '", prev->name, "'") : std::string("the header"),
                      " (tensors must be contiguous)"));
    cursor = e->end;
    prev = e;
  }
  if (cursor != data_size)
    throw Error(cat(path, ": the data section has ", data_size, " bytes but the tensors cover ",
                    cursor, " (trailing bytes)"));
}

// Everything the writers reject before touching the disk, tensor by tensor. `data_sizes` (the
// bytes write_safetensors was handed for each tensor) is checked when given.
void check_for_write(const std::vector<StTensorInfo>& tensors,
                     const std::vector<uint64_t>* data_sizes, const std::string& path) {
  std::set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const StTensorInfo& t = tensors[i];
    const std::string where = cat(path, ": cannot write tensor '", t.name, "': ");
    if (t.name == "__metadata__") throw Error(cat(where, "the name is reserved"));
    if (!names.insert(t.name).second) throw Error(cat(where, "duplicate name"));
    int elem_size = st_dtype_size(t.dtype);
    if (elem_size == 0)
      throw Error(cat(where, "unknown dtype '", t.dtype, "' (expected one of ", kKnownDtypes, ")"));
    for (int64_t d : t.shape)
      if (d < 0) throw Error(cat(where, "negative dimension in shape ", shape_text(t.shape)));
    uint64_t expected = 0;
    const bool fits = byte_size(t.shape, elem_size, &expected);
    if (data_sizes && (!fits || expected != (*data_sizes)[i]))
      throw Error(cat(where, "has ", (*data_sizes)[i], " bytes, expected shape ",
                      shape_text(t.shape), " x ", t.dtype, " = ", expected));
    if (!fits)
      throw Error(cat(where, "shape ", shape_text(t.shape), " x ", t.dtype, " is too large"));
  }
}

// The JSON header, padded with spaces to a multiple of 8, for `tensors` in `order` (their
// begin/end already set).
std::string build_header(const std::vector<StTensorInfo>& tensors, const std::vector<size_t>& order,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (size_t i : order) {
    const StTensorInfo& t = tensors[i];
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
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

// ---- StReader ------------------------------------------------------------------------------

StReader::StReader(std::string path) : path_(std::move(path)) {
  Fd f(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd_ < 0) throw Error(cat(path_, ": cannot open safetensors file: ", errno_text()));
  struct stat st;
  if (::fstat(f.fd_, &st) != 0) throw Error(cat(path_, ": cannot stat: ", errno_text()));
  if (!S_ISREG(st.st_mode)) throw Error(cat(path_, ": not a regular file"));
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    throw Error(cat(path_, ": file has ", file_size,
                    " bytes, too short for the 8-byte header length of a safetensors file"));

  uint8_t len_bytes[8];
  read_exact(f.fd_, 0, len_bytes, 8, path_);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > limits::kSafetensorsHeader)
    throw Error(cat(path_, ": header length ", header_len, " is more than the ",
                    limits::kSafetensorsHeader,
                    " bytes a safetensors header may have (corrupt, or not a safetensors file)"));
  if (header_len > file_size - 8)
    throw Error(cat(path_, ": header length ", header_len, " is larger than the ", file_size - 8,
                    " bytes that follow it (truncated, or not a safetensors file)"));
  std::string text(static_cast<size_t>(header_len), '\0');
  read_exact(f.fd_, 8, text.data(), header_len, path_);
  const Json header = parse_header(text, path_);

  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object())
        throw Error(cat(path_, ": __metadata__ must be an object of strings, got ",
                        item.value().type_name()));
      for (const auto& kv : item.value().items()) {
        if (!kv.value().is_string())
          throw Error(cat(path_, ": __metadata__ value of '", kv.key(), "' must be a string, got ",
                          kv.value().dump()));
        metadata_[kv.key()] = kv.value().get<std::string>();
      }
      continue;
    }
    tensors_.push_back(parse_entry(item.key(), item.value(), data_size, path_));
  }
  std::vector<const StTensorInfo*> layout;
  for (const StTensorInfo& e : tensors_) layout.push_back(&e);
  check_layout(layout, data_size, path_);
  std::sort(tensors_.begin(), tensors_.end(),
            [](const StTensorInfo& a, const StTensorInfo& b) { return a.name < b.name; });
  fd_ = f.fd_;
  f.fd_ = -1;
}

StReader::~StReader() {
  if (fd_ >= 0) ::close(fd_);
}

const StTensorInfo* StReader::find(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const StTensorInfo& t, const std::string& n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

void StReader::read(const StTensorInfo& tensor, uint64_t offset, void* dst, uint64_t n) const {
  if (offset > tensor.bytes() || n > tensor.bytes() - offset)
    throw Error(cat(path_, ": tensor '", tensor.name, "': cannot read bytes [", offset, ", +", n,
                    ") of its ", tensor.bytes()));
  read_exact(fd_, data_start_ + tensor.begin + offset, dst, n, path_);
}

StTensor StReader::read_tensor(const StTensorInfo& tensor) const {
  StTensor t{tensor.name, tensor.dtype, tensor.shape, {}};
  t.data.resize(static_cast<size_t>(tensor.bytes()));
  read(tensor, 0, t.data.data(), tensor.bytes());
  return t;
}

StFile read_safetensors(const std::string& path) {
  StReader reader(path);
  StFile file;
  file.metadata = reader.metadata();
  for (const StTensorInfo& t : reader.tensors()) file.tensors.push_back(reader.read_tensor(t));
  return file;
}

// ---- StWriter ------------------------------------------------------------------------------

std::vector<size_t> st_file_order(const std::vector<StTensorInfo>& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Larger elements first, then by name: every tensor is aligned to its element size.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int sa = st_dtype_size(tensors[a].dtype), sb = st_dtype_size(tensors[b].dtype);
    return sa != sb ? sa > sb : tensors[a].name < tensors[b].name;
  });
  return order;
}

StWriter::StWriter(std::string path, const std::map<std::string, std::string>& metadata,
                   std::vector<StTensorInfo> tensors)
    : path_(std::move(path)), tensors_(std::move(tensors)) {
  check_for_write(tensors_, nullptr, path_);
  order_ = st_file_order(tensors_);
  uint64_t offset = 0;
  for (size_t i : order_) {
    uint64_t bytes = 0;
    byte_size(tensors_[i].shape, st_dtype_size(tensors_[i].dtype), &bytes);  // fits: checked
    tensors_[i].begin = offset;
    tensors_[i].end = offset += bytes;
  }
  written_.assign(tensors_.size(), 0);
  appended_.assign(tensors_.size(), 0);
  const std::string header = build_header(tensors_, order_, metadata, path_);
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i)
    len_bytes[i] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i));
  data_start_ = 8 + header.size();

  tmp_ = cat(path_, ".tmp.", ::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(cat(path_, ": cannot create temp file ", tmp_, ": ", errno_text()));
  if (!pwrite_all(fd_, 0, len_bytes, 8) || !pwrite_all(fd_, 8, header.data(), header.size()))
    fail("write");
}

StWriter::~StWriter() {
  if (!committed_) discard();
}

void StWriter::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

void StWriter::fail(const char* verb, const char* rest) {
  const int err = errno;
  const std::string msg =
      cat(path_, ": cannot ", verb, " temp file ", tmp_, rest, ": ", std::strerror(err));
  discard();
  throw Error(msg);
}

void StWriter::write(size_t index, uint64_t offset, const void* data, uint64_t n) {
  if (committed_ || tmp_.empty())
    throw Error(cat(path_, ": cannot write: the writer was ",
                    committed_ ? "committed" : "discarded after a failure"));
  if (index >= tensors_.size())
    throw Error(cat(path_, ": no tensor #", index, " (", tensors_.size(), " declared)"));
  const StTensorInfo& t = tensors_[index];
  if (offset > t.bytes() || n > t.bytes() - offset)
    throw Error(cat(path_, ": tensor '", t.name, "': cannot write bytes [", offset, ", +", n,
                    ") of its ", t.bytes()));
  if (n == 0) return;
  if (!pwrite_all(fd_, data_start_ + t.begin + offset, data, n)) fail("write");
  written_[index] += n;
}

void StWriter::append(size_t index, const void* data, uint64_t n) {
  const uint64_t at = index < appended_.size() ? appended_[index] : 0;
  write(index, at, data, n);
  appended_[index] = at + n;
}

void StWriter::commit() {
  if (committed_ || tmp_.empty())
    throw Error(cat(path_, ": cannot commit: the writer was ",
                    committed_ ? "committed" : "discarded after a failure"));
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (written_[i] != tensors_[i].bytes()) {
      const std::string msg = cat(path_, ": tensor '", tensors_[i].name, "': ", written_[i],
                                  " of its ", tensors_[i].bytes(), " bytes were written");
      discard();
      throw Error(msg);
    }
  if (::fsync(fd_) != 0) fail("fsync");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename", " onto it");
  committed_ = true;

  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd_ < 0 || ::fsync(d.fd_) != 0)
    throw Error(cat(path_, ": written, but cannot fsync its directory ", dir, ": ", errno_text()));
}

void write_safetensors(const std::string& path, const StFile& file) {
  std::vector<StTensorInfo> infos;
  std::vector<uint64_t> sizes;
  for (const StTensor& t : file.tensors) {
    infos.push_back(StTensorInfo{t.name, t.dtype, t.shape});
    sizes.push_back(t.data.size());
  }
  check_for_write(infos, &sizes, path);
  StWriter writer(path, file.metadata, std::move(infos));
  for (size_t i : writer.file_order())
    writer.write(i, 0, file.tensors[i].data.data(), file.tensors[i].data.size());
  writer.commit();
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
