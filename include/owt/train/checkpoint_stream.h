// Moving one param tensor between the workers' shards and a safetensors file in bounded pieces
// (docs/ARCHITECTURE.md, "Checkpoints"): no worker ever holds a whole tensor it does not own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "owt/backend/backend.h"
#include "owt/comm/communicator.h"
#include "owt/core/safetensors.h"
#include "owt/nn/param.h"

namespace owt {

// What moves, is written or is read at once: 64 MiB (a limit, not a buffer: small tensors use
// buffers of their own size).
constexpr size_t kCheckpointChunkBytes = size_t{64} << 20;

// Collective over `comm`: tensor `index` of `writer` (full shape p.full_shape, F32) is `local`
// (p.value or p.state) of every worker. Rank 0 (the only one with a writer; nullptr elsewhere)
// writes its own part and receives every other worker's rows, point to point, in pieces of at
// most `chunk_bytes`, writing each at its offset; a replicated param is written from rank 0's
// copy. `written(bytes)` is called on rank 0 after each piece reaches the file. An integer
// param (Param::integer, replicated) is written by rank 0 as I64 (its floats rounded).
void write_param_tensor(StWriter* writer, size_t index, const Param& p, const Tensor& local,
                        Backend& backend, Communicator& comm, size_t chunk_bytes,
                        const std::function<void(uint64_t)>& written = {});

// This worker's part of `tensor` (p.full_shape, F32; the caller checked the shape) read from
// `reader` into `dst` (p.value or p.state): only this worker's rows, at most `chunk_bytes` at
// once. Errors name the file and the tensor. An integer param reads an I64 tensor.
void read_param_tensor(const StReader& reader, const StTensorInfo& tensor, const Param& p,
                       const Tensor& dst, Backend& backend, size_t chunk_bytes);

}  // namespace owt
