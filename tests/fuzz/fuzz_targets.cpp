// The fuzz targets (fuzz_targets.h). File-based readers get their input written to a private
// temp directory first, so every target goes through the same entry point a user's file does.
// Input layouts (tests/fuzz/make_seeds.py writes the seed corpus in them):
//   model_yaml    the model file's text (parsed for train, then for `owt plan`)
//   idx           u16 LE n, then n bytes of train-images-idx3-ubyte, the rest train-labels-idx1-ubyte
//                 (either may be gzip: zlib reads both)
//   cifar         byte 0: bit 0 -> CIFAR-100 (else 10), bit 1 -> a names file follows as u16 LE n
//                 and n bytes; the rest is the first batch file
//   safetensors   the file; what reads back is written, read again and compared
//   packed_index  train.owtpack; beside it fixed shards train-00000.owtshard (a PNG at byte 8,
//                 79 bytes, and a BMP at byte 87, 70 bytes) and train-00001.owtshard (19 bytes
//                 that are no image, at byte 8)
//   image_decode  an encoded image
#include "fuzz_targets.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "owt/core/error.h"
#include "owt/core/safetensors.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"
#include "owt/train/model_config.h"

namespace owt::fuzz {
namespace {

namespace fs = std::filesystem;

// A private directory for the files a target writes, removed at exit.
const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/owt-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("owt fuzz: mkdtemp");
      std::abort();
    }
    static std::string keep = tmpl;
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(keep, ec);
    });
    return tmpl;
  }();
  return dir;
}

std::string path_in(const std::string& sub, const std::string& name) {
  const fs::path dir = fs::path(scratch_dir()) / sub;
  fs::create_directories(dir);
  return (dir / name).string();
}

void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

void remove_file(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

uint32_t le16(const uint8_t* p) { return p[0] | (uint32_t(p[1]) << 8); }

// Reads every example as the loader would; unreadable images are BadExample, as in training.
void read_all(const Dataset& d) {
  Image img;
  const Shape s = d.example_shape();
  std::vector<float> x(s[1] > 0 ? static_cast<size_t>(s.numel()) : 0);
  for (int64_t i = 0; i < d.size(); ++i) {
    if (d.label(i) < 0 || d.label(i) >= d.classes()) std::abort();  // a reader let a bad label through
    try {
      if (!x.empty()) d.read(i, x.data());
      d.read_image(i, img);
      if (img.pixels.size() != static_cast<size_t>(img.c * img.h * img.w)) std::abort();
    } catch (const BadExample&) {
    }
  }
  (void)d.class_names();
}

void model_yaml(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    parse_model_config(text, "fuzz.yaml", ModelParts::All);
  } catch (const Error&) {
  }
  try {
    parse_model_config(text, "fuzz.yaml", ModelParts::Network);
  } catch (const Error&) {
  }
}

void idx(const uint8_t* data, size_t size) {
  size_t n = size >= 2 ? std::min<size_t>(le16(data), size - 2) : 0;
  const uint8_t* images = data + (size >= 2 ? 2 : size);
  const std::string img = path_in("idx", "train-images-idx3-ubyte");
  const std::string lab = path_in("idx", "train-labels-idx1-ubyte");
  write_file(img, images, n);
  write_file(lab, images + n, size - (images - data) - n);
  try {
    read_all(*open_idx_dataset(fs::path(img).parent_path().string(), "train"));
  } catch (const Error&) {
  }
}

void cifar(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const bool hundred = data[0] & 1, names = data[0] & 2;
  const uint8_t* p = data + 1;
  size_t left = size - 1;
  const std::string dir = fs::path(path_in("cifar", "x")).parent_path().string();
  const std::string names_file = path_in("cifar", hundred ? "fine_label_names.txt" : "batches.meta.txt");
  remove_file(path_in("cifar", "fine_label_names.txt"));
  remove_file(path_in("cifar", "batches.meta.txt"));
  remove_file(path_in("cifar", "data_batch_1.bin"));
  remove_file(path_in("cifar", "train.bin"));
  if (names && left >= 2) {
    const size_t n = std::min<size_t>(le16(p), left - 2);
    write_file(names_file, p + 2, n);
    p += 2 + n;
    left -= 2 + n;
  }
  write_file(path_in("cifar", hundred ? "train.bin" : "data_batch_1.bin"), p, left);
  try {
    read_all(*open_cifar_dataset(dir, "train", hundred ? 100 : 10));
  } catch (const Error&) {
  }
}

void safetensors(const uint8_t* data, size_t size) {
  const std::string path = path_in("st", "in.safetensors"), again = path_in("st", "again.safetensors");
  write_file(path, data, size);
  StFile file;
  try {
    file = read_safetensors(path);
  } catch (const Error&) {
    return;
  }
  for (const StTensor& t : file.tensors) {
    try {
      st_as_f32(t, path);
    } catch (const Error&) {
    }
  }
  // Whatever reads must write and read back the same (the checkpoint writer's contract).
  try {
    write_safetensors(again, file);
  } catch (const Error&) {
    return;  // e.g. names the writer refuses; the reader reported nothing wrong, which is fine
  }
  StFile back = read_safetensors(again);
  if (back.metadata != file.metadata || back.tensors.size() != file.tensors.size()) std::abort();
  for (size_t i = 0; i < back.tensors.size(); ++i) {
    const StTensor &a = file.tensors[i], &b = back.tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.data != b.data) std::abort();
  }
}

// A 2x2 RGB PNG and a 2x2 24-bit BMP (tests/fuzz/make_seeds.py makes the same bytes).
const uint8_t kPng[79] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0xd0, 0x08, 0xa8,
    0x58, 0x70, 0x82, 0x21, 0xaa, 0x69, 0xd5, 0xa5, 0x5f, 0x4a, 0x00, 0x21, 0xc8, 0x05, 0xcd, 0x27,
    0x1d, 0x9f, 0xa4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
const uint8_t kBmp[70] = {
    0x42, 0x4d, 0x46, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00, 0x28, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x13, 0x0b, 0x00, 0x00, 0x13, 0x0b, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x32, 0x64, 0x96, 0xc8, 0xfa, 0x00, 0x00, 0x46, 0x78,
    0xaa, 0xdc, 0x0e, 0x40, 0x00, 0x00};

void packed_index(const uint8_t* data, size_t size) {
  if (!have_image_codec()) return;  // packed sets need OpenCV
  static const bool shards = [] {
    std::string s0 = "OWTSHRD1";
    s0.append(reinterpret_cast<const char*>(kPng), sizeof kPng);
    s0.append(reinterpret_cast<const char*>(kBmp), sizeof kBmp);
    write_file(path_in("packed", "train-00000.owtshard"), reinterpret_cast<const uint8_t*>(s0.data()), s0.size());
    const std::string s1 = "OWTSHRD1not an image at all";
    write_file(path_in("packed", "train-00001.owtshard"), reinterpret_cast<const uint8_t*>(s1.data()), s1.size());
    return true;
  }();
  (void)shards;
  const std::string index = path_in("packed", "train.owtpack");
  write_file(index, data, size);
  try {
    read_all(*open_packed_dataset(fs::path(index).parent_path().string(), "train"));
  } catch (const Error&) {
  }
}

// The header must name the size the codec library decodes (decode_image refuses any other
// with "but decodes to"), and no allocation while decoding may be much larger than that size
// asks for: 24 bytes a pixel (12 for owt's floats, room for libjpeg's coefficient planes) over
// the image padded to whole 32-pixel JPEG blocks, plus 8 MiB (a TIFF strip or tile of 2^20 RGBA
// pixels, which read_image_header allows however small the image). Under libFuzzer a larger
// allocation aborts (fuzz_main.cpp); a header read unlike the library's would otherwise show
// only when its image is large enough to run out of memory.
void image_decode(const uint8_t* data, size_t size) {
  ImageHeader header;
  try {
    header = read_image_header(data, size);
  } catch (const BadExample&) {
    return;  // decode_image reads the same header first and refuses it the same way
  }
  if (!have_image_codec()) return;
  Image img;
  try {
    AllocationBudget budget(static_cast<size_t>((header.width + 32) * (header.height + 32)) * 24 +
                            (size_t{8} << 20));
    decode_image(data, size, img);
  } catch (const BadExample& e) {
    if (std::strstr(e.what(), "but decodes to")) {
      std::fprintf(stderr, "image_decode: %s\n", e.what());
      std::abort();
    }
    return;
  }
  const bool as_declared = img.w == header.width && img.h == header.height;
  const bool turned = img.w == header.height && img.h == header.width;  // an orientation tag
  if (img.c != 3 || !(as_declared || turned) ||
      img.pixels.size() != static_cast<size_t>(img.c * img.h * img.w))
    std::abort();
}

}  // namespace

thread_local size_t AllocationBudget::bytes_ = 0;

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"model_yaml", model_yaml},   {"idx", idx},
      {"cifar", cifar},             {"safetensors", safetensors},
      {"packed_index", packed_index}, {"image_decode", image_decode},
  };
  return all;
}

const Target* find_target(const std::string& name) {
  for (const Target& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace owt::fuzz
