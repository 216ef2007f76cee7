// pack_image_folder: lists each split (folder_listing.h), decodes and resizes chunks of images
// on threads, appends them in order to shard files and writes the index last (pack_format.h).
#include "owt/data/pack.h"

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>

#include "folder_listing.h"
#include "owt/core/error.h"
#include "owt/data/image_codec.h"
#include "pack_format.h"

namespace owt {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadExample("cannot open for reading");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

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

// Packs one split, adding the temporary files it writes to `files`.
void pack_split(const std::string& src, const std::string& dst, const std::string& split,
                const PackOptions& opt, PackSummary& sum, Renames& files) {
  FolderListing l = list_image_folder(src, split, opt.strict);
  const std::string name = fs::path(l.root).filename().string();  // train, val or test
  sum.splits.push_back(name);
  sum.skipped += l.skipped;
  std::vector<std::string> shard_names;
  std::vector<pack::Record> records;
  std::string shard;  // the shard being filled
  auto flush_shard = [&] {
    char final_name[64];
    std::snprintf(final_name, sizeof final_name, "-%05zu.owtshard", shard_names.size());
    shard_names.push_back(name + final_name);
    std::string path = (fs::path(dst) / shard_names.back()).string();
    files.emplace_back(path + ".tmp", path);
    write_file(path + ".tmp", shard);
    sum.bytes += static_cast<int64_t>(shard.size());
    shard.clear();
  };
  const int64_t n = static_cast<int64_t>(l.files.size());
  const int64_t chunk = 64 * std::max(1, opt.threads);
  std::vector<Packed> out;
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t rows = std::min(chunk, n - first);
    out.assign(rows, Packed{});
    std::exception_ptr failure;
#pragma omp parallel for num_threads(std::max(1, opt.threads)) schedule(dynamic)
    for (int64_t r = 0; r < rows; ++r) {
      const std::string& path = l.files[first + r];
      try {
        out[r].bytes = shrink_encoded(read_bytes(path), opt.shorter, opt.quality, out[r].h, out[r].w);
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
    for (int64_t r = 0; r < rows; ++r) {
      if (!out[r].ok) {
        ++sum.skipped;
        continue;
      }
      if (shard.empty()) shard.assign(pack::kShardMagic, 8);
      pack::Record rec;
      rec.shard = static_cast<uint32_t>(shard_names.size());
      rec.offset = shard.size();
      rec.size = static_cast<uint32_t>(out[r].bytes.size());
      rec.label = static_cast<uint32_t>(l.labels[first + r]);
      rec.h = static_cast<uint32_t>(out[r].h);
      rec.w = static_cast<uint32_t>(out[r].w);
      rec.name = fs::relative(l.files[first + r], l.root).string();
      shard += out[r].bytes;
      records.push_back(std::move(rec));
      if (static_cast<int64_t>(shard.size()) >= opt.shard_bytes) flush_shard();
    }
  }
  if (!shard.empty()) flush_shard();
  if (records.empty()) throw Error(cat(l.root, ": no readable images to pack"));

  std::string index(pack::kIndexMagic, 8);
  pack::put_u32(index, pack::kVersion);
  pack::put_u32(index, static_cast<uint32_t>(l.classes.size()));
  pack::put_u32(index, static_cast<uint32_t>(shard_names.size()));
  pack::put_u64(index, records.size());
  for (const std::string& c : l.classes) pack::put_str(index, c);
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
  std::string final_index = (fs::path(dst) / (name + pack::kIndexSuffix)).string();
  files.emplace_back(final_index + ".tmp", final_index);  // renamed last: the set appears whole
  write_file(final_index + ".tmp", index);
  sum.images += static_cast<int64_t>(records.size());
  sum.shards += static_cast<int64_t>(shard_names.size());
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
