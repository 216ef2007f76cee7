// safetensors: owt's checkpoint format, byte-compatible with Python's `safetensors` and torch.
// Host memory only (callers copy to/from devices). Reading validates every header field
// against the file; writing is atomic (temp file, fsync, rename, fsync of the directory).
// Whole files (StFile) or streamed: StWriter takes the header up front and the bytes in pieces,
// StReader reads byte ranges of one tensor on demand; the whole-file calls are built on them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace owt {

// One named tensor: dtype is a safetensors code ("F32", "I64", "BF16", ...), data is the
// raw little-endian bytes, exactly product(shape) * st_dtype_size(dtype) of them.
// An empty shape is a scalar (one element); a zero dim makes a tensor with no bytes.
struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// A whole file: free-form string metadata (`__metadata__`) and the tensors.
// read_safetensors returns the tensors sorted by name.
struct StFile {
  std::map<std::string, std::string> metadata;
  std::vector<StTensor> tensors;
  // The tensor called `name`, or nullptr.
  const StTensor* find(const std::string& name) const;
};

// Bytes per element of a safetensors dtype code; 0 for an unknown code.
// Known: BOOL U8 I8 F8_E4M3 F8_E5M2 (1), U16 I16 F16 BF16 (2), U32 I32 F32 (4), U64 I64 F64 (8).
int st_dtype_size(const std::string& dtype);

// Writes `file` to `path` atomically: <path>.tmp.<pid> is written, fsynced and renamed over
// `path`, then the directory is fsynced. If the process dies at any point, `path` holds the
// previous file or the new one, never a mix. Tensors are laid out contiguously, largest
// element size first and then by name (so every tensor is aligned to its element size, as
// the Python library does); the JSON header is padded with spaces to a multiple of 8.
// Throws owt::Error naming the path (and tensor) for invalid tensors and for any failed
// system call (with its errno text); the temp file is removed on failure. (An StWriter fed
// each tensor whole: one implementation of the layout.)
void write_safetensors(const std::string& path, const StFile& file);

// Reads and validates a whole file. Throws owt::Error naming the path, the tensor where
// relevant, and what was expected. As strict as the Python library: the header is at most
// limits::kSafetensorsHeader bytes (100 MB, the library's limit), tensors must cover the data
// section exactly, without gaps or overlaps. Every size is checked against the file's size
// before anything is allocated. (An StReader that reads every tensor.)
StFile read_safetensors(const std::string& path);

// A tensor without its bytes: what StWriter is given up front and what StReader reports.
// begin/end are its data_offsets (bytes within the data section); the writer's layout and
// the reader set them, a caller describing tensors to StWriter leaves them 0.
struct StTensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
  uint64_t bytes() const { return end - begin; }
};

// The order tensors are laid out in a file: indices into `tensors`, largest element size first,
// then by name (so every tensor is aligned to its element size, as the Python library does).
std::vector<size_t> st_file_order(const std::vector<StTensorInfo>& tensors);

// Streaming writer: the same file write_safetensors makes (byte for byte: same header, same
// layout, same atomic commit), with the tensor bytes handed over in pieces, in any order, so
// that no caller ever holds a whole file or a whole tensor. Every failure throws owt::Error
// naming the path (and tensor), as write_safetensors does; the temp file <path>.tmp.<pid> is
// removed on any failure and by the destructor of a writer that was never committed.
class StWriter {
 public:
  // Validates the tensors (as write_safetensors: names, dtypes, shapes), lays them out, creates
  // the temp file and writes the length prefix and header. Tensor indices below are positions
  // in `tensors`.
  StWriter(std::string path, const std::map<std::string, std::string>& metadata,
           std::vector<StTensorInfo> tensors);
  ~StWriter();
  StWriter(const StWriter&) = delete;
  StWriter& operator=(const StWriter&) = delete;

  // The tensors as given, with begin/end set by the layout.
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  // Indices in file order (st_file_order).
  const std::vector<size_t>& file_order() const { return order_; }
  // Writes `n` bytes of tensor `index` at byte `offset` within it (pwrite).
  void write(size_t index, uint64_t offset, const void* data, uint64_t n);
  // Writes `n` bytes of tensor `index` right after its previous append.
  void append(size_t index, const void* data, uint64_t n);
  // fsync, rename over the path, fsync of its directory. Every tensor must have received
  // exactly its bytes (counted, so a missing piece is an error, not a hole of zeros).
  void commit();

 private:
  [[noreturn]] void fail(const char* verb, const char* rest = "");
  void discard() noexcept;

  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t data_start_ = 0;
  std::vector<StTensorInfo> tensors_;
  std::vector<size_t> order_;
  std::vector<uint64_t> written_, appended_;
  bool committed_ = false;
};

// Ranged reader: opens and validates a file exactly as read_safetensors does (same checks,
// same messages, every size bounded before anything is allocated), then reads byte ranges of
// one tensor on demand (pread) without reading the rest.
class StReader {
 public:
  explicit StReader(std::string path);
  ~StReader();
  StReader(const StReader&) = delete;
  StReader& operator=(const StReader&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Every tensor of the file, sorted by name.
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const StTensorInfo* find(const std::string& name) const;
  // `n` bytes of `tensor` (one of tensors()) from byte `offset` within it; a range outside the
  // tensor, or a file that changed under the reader, is an owt::Error naming path and tensor.
  void read(const StTensorInfo& tensor, uint64_t offset, void* dst, uint64_t n) const;
  // The whole tensor with its bytes.
  StTensor read_tensor(const StTensorInfo& tensor) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<StTensorInfo> tensors_;
};

// Convenience for F32 tensors: copies product(shape) floats from `data`.
StTensor st_f32(std::string name, std::vector<int64_t> shape, const float* data);
// The tensor's values as floats; throws owt::Error naming `path` and the tensor if its
// dtype is not F32 or its byte size does not match its shape.
std::vector<float> st_as_f32(const StTensor& tensor, const std::string& path);

}  // namespace owt
