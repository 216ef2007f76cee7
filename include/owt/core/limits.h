// The bounds owt puts on every size it reads from a file, checked before anything is allocated,
// so a 20-byte file can never ask for 2^40 bytes. Each is far above what a real file needs; a
// file past one is an error naming the file and the field (docs/MODEL_FILES.md and
// datasets/README.md list them).
#pragma once
#include <cstdint>

namespace owt::limits {

// Model files (YAML).
constexpr uint64_t kModelFileBytes = uint64_t{1} << 20;  // the file itself: 1 MiB
constexpr int64_t kConfigInt = 2147483647;               // any integer in it (but the seed)
constexpr double kConfigFloat = 1e30;                    // magnitude of any number in it
constexpr int64_t kInputSide = int64_t{1} << 16;         // C, H and W of `input`
constexpr int64_t kInputElements = int64_t{1} << 28;     // C x H x W
constexpr int64_t kClasses = int64_t{1} << 24;           // `classes`, labels
constexpr int64_t kBatch = int64_t{1} << 20;             // solver.batch (per worker)
constexpr int64_t kEpochs = int64_t{1} << 24;            // solver.epochs
constexpr int64_t kThreads = 4096;                       // data.threads
constexpr int64_t kPrefetch = 1024;                      // data.prefetch
constexpr int64_t kParams = int64_t{1} << 32;            // parameters of the whole network
constexpr int64_t kActivations = int64_t{1} << 31;      // activation elements of one example
constexpr int64_t kBatchActivations = int64_t{1} << 36;  // the same x solver.batch
constexpr uint64_t kNameBytes = 4096;                    // a class, layer or model name

// Checkpoints (safetensors).
constexpr uint64_t kSafetensorsHeader = 100000000;  // JSON header bytes, as Python's library

// Images (folder and packed sets, `owt predict`).
constexpr int64_t kImageSide = int64_t{1} << 15;           // width or height
constexpr int64_t kImagePixels = int64_t{1} << 26;         // width x height
constexpr uint64_t kImageFileBytes = uint64_t{1} << 28;    // one encoded image: 256 MiB
// Pixels an encoded image may declare per byte of its file: compression never reaches this
// (deflate stays under 1032:1 of raw bytes, i.e. about 8300 one-bit pixels per byte), so a
// 20-byte file can never ask for more than 327680 pixels.
constexpr int64_t kImagePixelsPerByte = int64_t{1} << 14;

// IDX and CIFAR sets (loaded whole into memory).
constexpr uint64_t kIdxBytes = uint64_t{1} << 34;          // pixel bytes of one IDX file
constexpr uint64_t kCifarFileBytes = uint64_t{1} << 34;    // one CIFAR batch file
constexpr uint64_t kNamesFileBytes = uint64_t{1} << 20;    // batches.meta.txt and the like

// Packed sets.
constexpr uint64_t kPackIndexBytes = uint64_t{1} << 32;    // <split>.owtpack
constexpr int64_t kPackClasses = kClasses;

}  // namespace owt::limits
