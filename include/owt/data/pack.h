// `owt data pack`: turns an image folder into a packed set — each split's images resized to a
// shorter side, stored as encoded bytes in a few large shard files plus an index (see
// src/data/pack_format.h), so training reads a handful of files instead of millions.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace owt {

struct PackOptions {
  int shorter = 256;                     // resize so the shorter side is this (0: keep the bytes)
  int quality = 90;                      // JPEG quality of re-encoded images
  int64_t shard_bytes = int64_t{1} << 30;  // start a new shard past this size
  int threads = 1;                       // decode/resize threads
  bool strict = false;                   // unreadable images are errors instead of skipped
  // Called after every chunk of images with the files of `split` handled so far out of
  // `total` (never decreasing, the last call with done == total); empty: no calls.
  std::function<void(const std::string& split, int64_t done, int64_t total)> progress;
};

struct PackSummary {
  std::vector<std::string> splits;  // the splits packed (train, val, test)
  int64_t images = 0, skipped = 0, shards = 0, bytes = 0;
};

// Packs <src>/{train,val,test}/<class>/* (those present) into <dst>/<split>.owtpack and
// <dst>/<split>-NNNNN.owtshard. Files are written under temporary names and renamed at the
// end, so an interrupted pack leaves no half-written set. Needs OpenCV.
PackSummary pack_image_folder(const std::string& src, const std::string& dst,
                              const PackOptions& options);

}  // namespace owt
