// safetensors: owt's checkpoint format, byte-compatible with Python's `safetensors` and torch.
// Host memory only (callers copy to/from devices). Reading validates every header field
// against the file; writing is atomic (temp file, fsync, rename, fsync of the directory).
#pragma once
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
// system call (with its errno text); the temp file is removed on failure.
void write_safetensors(const std::string& path, const StFile& file);

// Reads and validates a whole file. Throws owt::Error naming the path, the tensor where
// relevant, and what was expected. As strict as the Python library: the header is at most
// limits::kSafetensorsHeader bytes (100 MB, the library's limit), tensors must cover the data
// section exactly, without gaps or overlaps. Every size is checked against the file's size
// before anything is allocated.
StFile read_safetensors(const std::string& path);

// Convenience for F32 tensors: copies product(shape) floats from `data`.
StTensor st_f32(std::string name, std::vector<int64_t> shape, const float* data);
// The tensor's values as floats; throws owt::Error naming `path` and the tensor if its
// dtype is not F32 or its byte size does not match its shape.
std::vector<float> st_as_f32(const StTensor& tensor, const std::string& path);

}  // namespace owt
