// Checkpoints on one worker: the streamed file equals write_safetensors' byte for byte at any
// chunk size, and loads (also init_from_checkpoint) reshard it onto any K reading only each
// worker's rows. K = 2..4 under mpirun: tests/mpi/checkpoint_mpi_test.cpp.
#include <gtest/gtest.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "owt/comm/communicator.h"
#include "owt/core/safetensors.h"
#include "owt/train/checkpoint.h"
#include "support/checkpoint_fixture.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Chunk sizes that cut every tensor differently: one float, a few, one head row (11 floats),
// a bit more, and the default.
const size_t kChunks[] = {4, 12, 44, 100, kCheckpointChunkBytes};

TEST(Checkpoint, StreamedFileEqualsTheWholeFileWriterAtAnyChunkSize) {
  TempDir dir;
  auto be = make_cpu_backend();
  auto comm = make_local_communicator();
  CheckpointModel model(0, 1, *be);
  const ModelConfig cfg = test::checkpoint_config();
  std::string first;
  for (size_t chunk : kChunks) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    CheckpointMeta meta{cfg, 12, 3, false, {"a", "b"}};
    meta.chunk_bytes = chunk;
    const std::string path = dir.file("c" + std::to_string(chunk) + ".safetensors");
    save_checkpoint(path, model.store(), meta, *be, *comm);
    const std::string bytes = slurp(path);
    if (first.empty()) first = bytes;
    EXPECT_TRUE(bytes == first) << "differs from the file written with another chunk size";

    // The same tensors, whole, through write_safetensors.
    StFile whole;
    whole.metadata = StReader(path).metadata();
    EXPECT_EQ(whole.metadata.at("step"), "12");
    EXPECT_EQ(whole.metadata.at("class_names"), "a\nb");
    for (const Param* p : model.store().params()) {
      const std::vector<float> v = keyed_whole(*p, false), m = keyed_whole(*p, true);
      whole.tensors.push_back(st_f32(p->name, p->full_shape.dims(), v.data()));
      whole.tensors.push_back(
          st_f32("optim." + p->name + ".momentum_buffer", p->full_shape.dims(), m.data()));
    }
    for (const Param* b : model.store().buffers()) {  // after the params; counters as I64
      const std::vector<float> v = keyed_whole(*b, false);
      if (!b->integer) {
        whole.tensors.push_back(st_f32(b->name, b->full_shape.dims(), v.data()));
        continue;
      }
      StTensor t{b->name, "I64", b->full_shape.dims(), std::vector<uint8_t>(8 * v.size())};
      for (size_t i = 0; i < v.size(); ++i) {
        const int64_t n = static_cast<int64_t>(v[i]);
        std::memcpy(t.data.data() + 8 * i, &n, 8);
      }
      whole.tensors.push_back(std::move(t));
    }
    const std::string reference = dir.file("reference.safetensors");
    write_safetensors(reference, whole);
    EXPECT_TRUE(bytes == slurp(reference)) << "differs from write_safetensors' file";
  }
  // Nothing but the checkpoints and the reference: no temp files.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  EXPECT_EQ(entries, static_cast<int>(std::size(kChunks)) + 1);
}

TEST(Checkpoint, LoadReshardsOntoAnyWorkerCountReadingOnlyItsRows) {
  TempDir dir;
  auto be = make_cpu_backend();
  auto comm = make_local_communicator();
  const ModelConfig cfg = test::checkpoint_config();
  const std::string path = dir.file("one.safetensors");
  {
    CheckpointModel one(0, 1, *be);
    save_checkpoint(path, one.store(), CheckpointMeta{cfg, 5, 1, false, {}}, *be, *comm);
  }
  for (int workers : {1, 2, 3, 4})
    for (int rank = 0; rank < workers; ++rank)
      for (size_t chunk : kChunks) {
        SCOPED_TRACE(cat("rank ", rank, " of ", workers, ", chunk ", chunk));
        CheckpointModel model(rank, workers, *be);
        model.clear(*be);
        LoadedCheckpoint ck = load_checkpoint(path, model.store(), *be, true, chunk);
        EXPECT_EQ(ck.step, 5);
        EXPECT_EQ(ck.epoch, 1);
        model.expect_keyed(*be, true);

        model.clear(*be);
        InitFromReport r = init_from_checkpoint(path, model.store(), {}, *be, chunk);
        EXPECT_EQ(r.loaded.size(), model.store().params().size() + model.store().buffers().size());
        EXPECT_TRUE(r.unused.empty() && r.missing.empty() && r.shape_mismatch.empty());
        model.expect_keyed(*be, false);
      }
}

TEST(Checkpoint, LoadRejectsAWrongDtypeOrShapeNamingTheTensor) {
  TempDir dir;
  auto be = make_cpu_backend();
  CheckpointModel model(1, 3, *be);
  StFile f;
  for (const Param* p : model.store().params()) {
    const std::vector<float> v = keyed_whole(*p, false);
    f.tensors.push_back(st_f32(p->name, p->full_shape.dims(), v.data()));
  }
  // fc1.weight as I32, head.weight with its dims swapped.
  for (StTensor& t : f.tensors) {
    if (t.name == "fc1.weight") t.dtype = "I32";
    if (t.name == "head.weight") t.shape = {11, 37};
  }
  const std::string path = dir.file("bad.safetensors");
  write_safetensors(path, f);
  expect_error([&] { load_checkpoint(path, model.store(), *be, false); },
               {path, "tensor 'fc1.weight'", "expected dtype F32, got I32"});
  for (StTensor& t : f.tensors)
    if (t.name == "fc1.weight") t.dtype = "F32";
  write_safetensors(path, f);
  expect_error([&] { load_checkpoint(path, model.store(), *be, false); },
               {path, "tensor 'head.weight' has shape (11, 37)", "expects (37, 11)"});
  expect_error([&] { load_checkpoint(path, model.store(), *be, true); },
               {path, "'optim.conv1.weight.momentum_buffer' is missing"});
}

}  // namespace
}  // namespace owt::test
