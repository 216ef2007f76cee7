// One param tensor to or from a safetensors file in bounded pieces (checkpoint_stream.h): rank 0
// assembles the file block by block from every worker's rows; each worker reads only its own.
// Integer buffers (num_batches_tracked) are I64 in the file, a float in memory.
#include "owt/train/checkpoint_stream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "owt/core/error.h"
#include "owt/core/shard.h"

namespace owt {
namespace {

// Runs shorter than this are read as whole spans of rows (one pread instead of one per run).
constexpr int64_t kShortRunBytes = 4096;

int64_t chunk_elements(size_t chunk_bytes) {
  return std::clamp<int64_t>(static_cast<int64_t>(chunk_bytes / sizeof(float)), 1, int64_t{1} << 28);
}

// A host buffer that grows on demand and is never zero-filled; growing drops the contents.
class GrowingBuffer {
 public:
  float* get(int64_t n) {
    if (n > size_) {
      data_.reset(new float[static_cast<size_t>(n)]);
      size_ = n;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float[]> data_;
  int64_t size_ = 0;
};

// A tensor as (outer, full, inner) around its sharded axis, worker r holding
// [begin[r], begin[r] + n[r]) of `full`. A replicated tensor is (1, numel, 1), all of it on
// rank 0 (the copy that is written).
struct Split {
  int64_t outer = 1, full = 0, inner = 1;
  std::vector<int64_t> begin, n;
};

Split split_of(const Param& p, int rank, int K) {
  Split s;
  s.begin.assign(K, 0);
  s.n.assign(K, 0);
  if (!p.sharded() || K == 1) {
    s.full = p.full_shape.numel();
    s.n[0] = s.full;
    return s;
  }
  const ShardView v = p.shard_view();
  s.outer = v.outer;
  s.inner = v.inner;
  s.full = v.full;
  for (int r = 0; r < K; ++r) {
    s.begin[r] = static_cast<int64_t>(shard_begin(s.full, r, K));
    s.n[r] = static_cast<int64_t>(shard_end(s.full, r, K)) - s.begin[r];
  }
  OWT_CHECK(p.placement.begin == s.begin[rank] && p.placement.end == s.begin[rank] + s.n[rank],
            p.name, ": placement ", p.placement.str(), " is not the even split on ", K, " workers");
  return s;
}

// One worker's part of a block: `rows` runs of `run` elements, consecutive in its local tensor
// from element `local`, landing at block element dst + i * stride.
struct Piece {
  int rank = 0;
  int64_t local = 0, rows = 1, run = 0, dst = 0, stride = 0;
  int64_t count() const { return rows * run; }
};

// Elements [at, at + len) of the tensor in the file, at most one chunk, from its pieces.
struct Block {
  int64_t at = 0, len = 0;
  std::vector<Piece> pieces;
  // One piece that is the whole block as it stands: written straight from where it arrives.
  bool direct() const {
    const Piece& p = pieces[0];
    return pieces.size() == 1 && p.dst == 0 && (p.rows == 1 || p.run == p.stride) &&
           p.count() == len;
  }
};

// The file order of the tensor cut into blocks of at most `chunk` elements: whole rows (every
// worker's part of each) when a row fits in a chunk, else each worker's run of a row in pieces.
std::vector<Block> blocks_of(const Split& s, int64_t chunk) {
  std::vector<Block> blocks;
  const int64_t row = s.full * s.inner;
  if (row == 0 || s.outer == 0) return blocks;
  const int K = static_cast<int>(s.n.size());
  if (row <= chunk) {
    const int64_t per_block = chunk / row;
    for (int64_t o0 = 0; o0 < s.outer; o0 += per_block) {
      const int64_t o1 = std::min(s.outer, o0 + per_block);
      Block b{o0 * row, (o1 - o0) * row, {}};
      for (int r = 0; r < K; ++r)
        if (s.n[r] > 0)
          b.pieces.push_back(
              Piece{r, o0 * s.n[r] * s.inner, o1 - o0, s.n[r] * s.inner, s.begin[r] * s.inner, row});
      blocks.push_back(std::move(b));
    }
    return blocks;
  }
  for (int64_t o = 0; o < s.outer; ++o)
    for (int r = 0; r < K; ++r) {
      const int64_t run = s.n[r] * s.inner;
      for (int64_t k = 0; k < run; k += chunk) {
        const int64_t len = std::min(chunk, run - k);
        blocks.push_back(Block{(o * s.full + s.begin[r]) * s.inner + k, len,
                               {Piece{r, o * run + k, 1, len, 0, len}}});
      }
    }
  return blocks;
}

struct Step {
  const Block* block;
  const Piece* piece;
  bool last;  // the block's last piece
};

// Waits for a send without spinning: a sender mostly waits for rank 0 to write, and on a host
// with fewer cores than workers a busy wait takes the core rank 0 writes with. Polls test()
// (MPI moves the message forward inside it) with sleeps growing from 0.2 to 3.2 ms; a handle
// whose test() never says done (the base class's) gets a blocking wait() after a minute.
void wait_politely(CommHandle& h) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  auto nap = std::chrono::microseconds(200);
  while (!h.test() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(nap);
    nap = std::min(2 * nap, std::chrono::microseconds(3200));
  }
  h.wait();
}

// Every worker but rank 0: its pieces, in order, two in flight (to_host of one while the
// other is sent).
void send_pieces(const std::vector<Step>& steps, const float* local, Backend& backend,
                 Communicator& comm) {
  GrowingBuffer buf[2];
  std::unique_ptr<CommHandle> sent[2];
  int k = 0;
  for (const Step& s : steps) {
    if (s.piece->rank != comm.rank()) continue;
    const int slot = k++ % 2;
    if (sent[slot]) wait_politely(*sent[slot]);
    const int64_t n = s.piece->count();
    float* host = buf[slot].get(n);
    backend.to_host(local + s.piece->local, host, n * sizeof(float));
    sent[slot] = comm.send_async(host, n, 0);
  }
  for (auto& h : sent)
    if (h) wait_politely(*h);
}

}  // namespace

namespace {

// An integer buffer (Param::integer: replicated, a few elements): rank 0 writes its copy as I64.
void write_integer_tensor(StWriter* writer, size_t index, const Param& p, const Tensor& local,
                          Backend& backend, Communicator& comm,
                          const std::function<void(uint64_t)>& written) {
  OWT_CHECK(!p.sharded(), p.name, ": an integer tensor is replicated");
  if (comm.rank() != 0) return;
  OWT_CHECK(writer != nullptr, "rank 0 writes the checkpoint");
  std::vector<float> values(local.numel());
  backend.to_host(local.f32(), values.data(), values.size() * sizeof(float));
  std::vector<int64_t> counts(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    counts[i] = static_cast<int64_t>(std::llround(values[i]));
  writer->write(index, 0, counts.data(), counts.size() * sizeof(int64_t));
  if (written) written(counts.size() * sizeof(int64_t));
}

void read_integer_tensor(const StReader& reader, const StTensorInfo& tensor, const Param& p,
                         const Tensor& dst, Backend& backend) {
  if (tensor.dtype != "I64")
    throw Error(cat(reader.path(), ": tensor '", tensor.name, "': expected dtype I64, got ",
                    tensor.dtype));
  OWT_CHECK(!p.sharded() && dst.numel() == p.full_shape.numel(), p.name);
  std::vector<int64_t> counts(dst.numel());
  reader.read(tensor, 0, counts.data(), counts.size() * sizeof(int64_t));
  std::vector<float> values(counts.begin(), counts.end());
  backend.from_host(values.data(), dst.f32(), values.size() * sizeof(float));
}

}  // namespace

void write_param_tensor(StWriter* writer, size_t index, const Param& p, const Tensor& local,
                        Backend& backend, Communicator& comm, size_t chunk_bytes,
                        const std::function<void(uint64_t)>& written) {
  if (p.integer) return write_integer_tensor(writer, index, p, local, backend, comm, written);
  const Split split = split_of(p, comm.rank(), comm.size());
  OWT_CHECK(local.numel() == (p.sharded() ? split.outer * split.n[comm.rank()] * split.inner
                                           : p.full_shape.numel()), p.name);
  const std::vector<Block> blocks = blocks_of(split, chunk_elements(chunk_bytes));
  std::vector<Step> steps;
  for (const Block& b : blocks)
    for (size_t i = 0; i < b.pieces.size(); ++i)
      steps.push_back(Step{&b, &b.pieces[i], i + 1 == b.pieces.size()});
  if (comm.rank() != 0) return send_pieces(steps, local.f32(), backend, comm);

  OWT_CHECK(writer != nullptr, "rank 0 writes the checkpoint");
  // Step i arrives in buf[i % 2]; the receive of step i + 1 is posted before step i is
  // written, so the transfer of one overlaps the write of the other.
  GrowingBuffer buf[2], assembled;
  std::unique_ptr<CommHandle> received[2];
  size_t posted = 0;
  auto post = [&](size_t i) {
    const Piece& pc = *steps[i].piece;
    if (pc.rank == 0) return;
    received[i % 2] = comm.recv_async(buf[i % 2].get(pc.count()), pc.count(), pc.rank);
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    for (; posted <= i + 1 && posted < steps.size(); ++posted) post(posted);
    const Piece& pc = *steps[i].piece;
    const Block& b = *steps[i].block;
    float* data = buf[i % 2].get(pc.count());
    if (pc.rank == 0) {
      backend.to_host(local.f32() + pc.local, data, pc.count() * sizeof(float));
    } else {
      received[i % 2]->wait();
      received[i % 2].reset();
    }
    const float* out = data;
    if (!b.direct()) {
      float* block = assembled.get(b.len);
      for (int64_t r = 0; r < pc.rows; ++r)
        std::memcpy(block + pc.dst + r * pc.stride, data + r * pc.run, pc.run * sizeof(float));
      if (!steps[i].last) continue;
      out = block;
    }
    writer->write(index, b.at * sizeof(float), out, b.len * sizeof(float));
    if (written) written(b.len * sizeof(float));
  }
}

void read_param_tensor(const StReader& reader, const StTensorInfo& tensor, const Param& p,
                       const Tensor& dst, Backend& backend, size_t chunk_bytes) {
  if (p.integer) return read_integer_tensor(reader, tensor, p, dst, backend);
  if (tensor.dtype != "F32")
    throw Error(cat(reader.path(), ": tensor '", tensor.name, "': expected dtype F32, got ",
                    tensor.dtype));
  // This worker's (outer, n, inner) of the file's (outer, full, inner).
  const ShardView v = p.shard_view();
  int64_t outer = v.outer;
  const int64_t inner = v.inner, full = v.full, begin = v.begin, n = v.n;
  OWT_CHECK(dst.numel() == outer * n * inner, p.name);
  if (dst.numel() == 0) return;
  int64_t run = n * inner, row = full * inner;  // elements: this worker's of a row, a row
  if (run == row) {  // whole rows: one contiguous range
    run *= outer;
    row = run;
    outer = 1;
  }
  const int64_t chunk = chunk_elements(chunk_bytes);
  float* out = dst.f32();
  GrowingBuffer span, packed;
  if (outer > 1 && row <= chunk && run * static_cast<int64_t>(sizeof(float)) < kShortRunBytes) {
    // Short runs: read whole rows (all workers' parts) a chunk at a time, keep this worker's.
    const int64_t per_read = chunk / row;
    for (int64_t o0 = 0; o0 < outer; o0 += per_read) {
      const int64_t o1 = std::min(outer, o0 + per_read);
      const int64_t len = (o1 - o0 - 1) * row + run;
      float* rows = span.get(len);
      reader.read(tensor, (o0 * full + begin) * inner * sizeof(float), rows, len * sizeof(float));
      float* mine = packed.get((o1 - o0) * run);
      for (int64_t o = 0; o < o1 - o0; ++o)
        std::memcpy(mine + o * run, rows + o * row, run * sizeof(float));
      backend.from_host(mine, out + o0 * run, (o1 - o0) * run * sizeof(float));
    }
    return;
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < run; k += chunk) {
      const int64_t len = std::min(chunk, run - k);
      float* host = span.get(len);
      reader.read(tensor, ((o * full + begin) * inner + k) * sizeof(float), host,
                  len * sizeof(float));
      backend.from_host(host, out + o * run + k, len * sizeof(float));
    }
}

}  // namespace owt
