// pack_image_folder: lists each split (folder_listing.h), decodes and resizes chunks of images
// on threads, appends them in order to shard files and writes the index last (pack_format.h).
#include "owt/data/pack.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "folder_listing.h"
#include "owt/core/error.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"
#include "pack_format.h"

namespace owt {
namespace {

namespace fs = std::filesystem;

// Writes `bytes` to `path` and flushes it to disk.
void write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(cat(path, ": cannot create"));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw Error(cat(path, ": write failed (disk full?)"));
}

struct Packed {
  std::string bytes;
  int h = 0, w = 0;
  bool ok = false;
};

using Renames = std::vector<std::pair<std::string, std::string>>;  // temporary -> final name

// Decodes and resizes files [first, first + rows) on opt.threads threads. An unreadable image
// is warned about and left !ok, or with opt.strict an Error; any other failure is rethrown.
std::vector<Packed> shrink_chunk(const std::vector<std::string>& files, int64_t first,
                                 int64_t rows, const PackOptions& opt) {
  std::vector<Packed> out(rows);
  std::exception_ptr failure;
#pragma omp parallel for num_threads(std::max(1, opt.threads)) schedule(dynamic)
  for (int64_t r = 0; r < rows; ++r) {
    const std::string& path = files[first + r];
    try {
      out[r].bytes = shrink_encoded(read_encoded_image(path), opt.shorter, opt.quality, out[r].h, out[r].w);
      out[r].ok = true;
    } catch (const BadExample& e) {
      if (opt.strict) {
#pragma omp critical(owt_pack_failure)
        if (!failure) failure = std::make_exception_ptr(Error(cat(path, ": ", e.what(), " (--strict)")));
      } else {
        warn(cat("skipping ", path, ": ", e.what()));
      }
    } catch (...) {
#pragma omp critical(owt_pack_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return out;
}

// The shards of one split: images appended in order to <dst>/<split>-NNNNN.owtshard, a new
// shard once one reaches shard_bytes, each written under a temporary name added to `files`,
// and the record of where each image went.
class ShardWriter {
 public:
  ShardWriter(std::string dst, std::string split, int64_t shard_bytes, Renames& files)
      : dst_(std::move(dst)), split_(std::move(split)), shard_bytes_(shard_bytes), files_(files) {}

  void add(const Packed& image, int32_t label, std::string name) {
    if (shard_.empty()) shard_.assign(pack::kShardMagic, 8);
    pack::Record rec;
    rec.shard = static_cast<uint32_t>(names_.size());
    rec.offset = shard_.size();
    rec.size = static_cast<uint32_t>(image.bytes.size());
    rec.label = static_cast<uint32_t>(label);
    rec.h = static_cast<uint32_t>(image.h);
    rec.w = static_cast<uint32_t>(image.w);
    rec.name = std::move(name);
    shard_ += image.bytes;
    records_.push_back(std::move(rec));
    if (static_cast<int64_t>(shard_.size()) >= shard_bytes_) flush();
  }

  // Writes the shard being filled, if any.
  void finish() {
    if (!shard_.empty()) flush();
  }

  const std::vector<std::string>& shard_names() const { return names_; }
  const std::vector<pack::Record>& records() const { return records_; }
  int64_t bytes() const { return bytes_; }  // written so far

 private:
  void flush() {
    char final_name[64];
    std::snprintf(final_name, sizeof final_name, "-%05zu.owtshard", names_.size());
    names_.push_back(split_ + final_name);
    std::string path = (fs::path(dst_) / names_.back()).string();
    files_.emplace_back(path + ".tmp", path);
    write_file(path + ".tmp", shard_);
    bytes_ += static_cast<int64_t>(shard_.size());
    shard_.clear();
  }

  std::string dst_, split_;
  int64_t shard_bytes_;
  Renames& files_;
  std::vector<std::string> names_;    // shard files written, beside the index
  std::vector<pack::Record> records_;
  std::string shard_;                 // the shard being filled
  int64_t bytes_ = 0;
};

// The index of a split (pack_format.h).
std::string encode_index(const std::vector<std::string>& classes,
                         const std::vector<std::string>& shard_names,
                         const std::vector<pack::Record>& records) {
  std::string index(pack::kIndexMagic, 8);
  pack::put_u32(index, pack::kVersion);
  pack::put_u32(index, static_cast<uint32_t>(classes.size()));
  pack::put_u32(index, static_cast<uint32_t>(shard_names.size()));
  pack::put_u64(index, records.size());
  for (const std::string& c : classes) pack::put_str(index, c);
  for (const std::string& f : shard_names) pack::put_str(index, f);
  for (const pack::Record& r : records) {
    pack::put_u32(index, r.shard);
    pack::put_u64(index, r.offset);
    pack::put_u32(index, r.size);
    pack::put_u32(index, r.label);
    pack::put_u32(index, r.h);
    pack::put_u32(index, r.w);
    pack::put_str(index, r.name);
  }
  index.append(pack::kIndexEnd, 8);
  return index;
}

// Packs one split, adding the temporary files it writes to `files`.
void pack_split(const std::string& src, const std::string& dst, const std::string& split,
                const PackOptions& opt, PackSummary& sum, Renames& files) {
  FolderListing l = list_image_folder(src, split, opt.strict);
  const std::string name = fs::path(l.root).filename().string();  // train, val or test
  sum.splits.push_back(name);
  sum.skipped += l.skipped;
  ShardWriter shards(dst, name, opt.shard_bytes, files);
  const int64_t n = static_cast<int64_t>(l.files.size());
  const int64_t chunk = 64 * std::max(1, opt.threads);
  for (int64_t first = 0; first < n; first += chunk) {
    const std::vector<Packed> out = shrink_chunk(l.files, first, std::min(chunk, n - first), opt);
    for (int64_t r = 0; r < static_cast<int64_t>(out.size()); ++r) {
      if (!out[r].ok) {
        ++sum.skipped;
        continue;
      }
      shards.add(out[r], l.labels[first + r], fs::relative(l.files[first + r], l.root).string());
    }
    if (opt.progress) opt.progress(name, first + static_cast<int64_t>(out.size()), n);
  }
  shards.finish();
  if (shards.records().empty()) throw Error(cat(l.root, ": no readable images to pack"));

  std::string final_index = (fs::path(dst) / (name + pack::kIndexSuffix)).string();
  files.emplace_back(final_index + ".tmp", final_index);  // renamed last: the set appears whole
  write_file(final_index + ".tmp", encode_index(l.classes, shards.shard_names(), shards.records()));
  sum.images += static_cast<int64_t>(shards.records().size());
  sum.shards += static_cast<int64_t>(shards.shard_names().size());
  sum.bytes += shards.bytes();
}

}  // namespace

PackSummary pack_image_folder(const std::string& src, const std::string& dst,
                              const PackOptions& opt) {
  if (!have_image_codec()) throw_no_image_codec();
  if (opt.shorter < 0) throw Error(cat("data pack --size: ", opt.shorter, " must be >= 0"));
  if (opt.quality < 1 || opt.quality > 100)
    throw Error(cat("data pack --quality: ", opt.quality, " must be in 1..100"));
  if (opt.shard_bytes < 1) throw Error("data pack --shard-mb: must be positive");
  if (!fs::is_directory(src)) throw Error(cat("data pack: ", src, " is not a directory"));
  std::vector<std::string> splits;
  for (const char* s : {"train", "val", "test"})
    if (fs::is_directory(fs::path(src) / s)) splits.push_back(s);
  if (splits.empty())
    throw Error(cat("data pack: ", src, " has no train, val or test folder (expected ", src,
                    "/train/<class>/<image files>)"));
  fs::create_directories(dst);
  PackSummary sum;
  Renames files;
  try {
    for (const std::string& s : splits) pack_split(src, dst, s, opt, sum, files);
  } catch (...) {
    std::error_code ec;
    for (const auto& f : files) fs::remove(f.first, ec);
    throw;
  }
  for (const auto& f : files) fs::rename(f.first, f.second);
  return sum;
}

}  // namespace owt
