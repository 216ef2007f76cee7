// Checkpoints of buffers (BatchNorm's running statistics): saved under their own names with no
// momentum entry, num_batches_tracked as a 0-dim I64 tensor (what PyTorch's state_dict holds),
// loaded back (also by init_from_checkpoint), rank 0's copy written with no communication, and a
// checkpoint without a buffer the model has is an error naming the file and the tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "owt/comm/communicator.h"
#include "owt/core/safetensors.h"
#include "owt/nn/init.h"
#include "owt/train/checkpoint.h"
#include "support/checkpoint_fixture.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

// A batchnorm's params and buffers on one worker, bound in a store.
class BnModel {
 public:
  BnModel(Backend& backend, bool with_buffers, float offset) {
    const InitSpec none{};
    params_.push_back(make_replicated_param("bn1.weight", Shape{3}, none));
    params_.push_back(make_replicated_param("bn1.bias", Shape{3}, none));
    buffers_.push_back(make_replicated_param("bn1.running_mean", Shape{3}, none));
    buffers_.push_back(make_replicated_param("bn1.running_var", Shape{3}, none));
    buffers_.push_back(make_replicated_param("bn1.num_batches_tracked", Shape{}, none));
    buffers_.back().integer = true;
    std::vector<Param*> params, buffers;
    for (Param& p : params_) params.push_back(&p);
    if (with_buffers)
      for (Param& b : buffers_) buffers.push_back(&b);
    store = std::make_unique<ParamStore>(params, buffers, backend);
    set(backend, offset);
  }
  // Every value, momentum and buffer: a function of (tensor, element) and `offset`; the counter
  // is 1000 + offset.
  void set(Backend& backend, float offset) {
    float v = offset;
    for (Param& p : params_)
      for (const Tensor* t : {&p.value, &p.state}) fill(backend, *t, v += 0.5f);
    for (Param* b : store->buffers())
      fill(backend, b->value, b->integer ? 1000.f + offset : (v += 0.25f));
  }
  std::vector<float> values(const Param& p) const {
    return std::vector<float>(p.value.f32(), p.value.f32() + p.value.numel());
  }
  const Param& buffer(size_t i) const { return buffers_.at(i); }
  std::unique_ptr<ParamStore> store;

 private:
  static void fill(Backend& backend, const Tensor& t, float first) {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = first + static_cast<float>(i);
    (void)backend;
  }
  std::vector<Param> params_, buffers_;
};

TEST(CheckpointBuffers, SavedByNameWithCounterAsZeroDimI64AndLoadedBack) {
  TempDir dir;
  auto be = make_cpu_backend();
  auto comm = make_local_communicator();
  const ModelConfig cfg = checkpoint_config();
  BnModel model(*be, true, 7.f);
  const std::string path = dir.file("bn.safetensors");
  save_checkpoint(path, *model.store, CheckpointMeta{cfg, 4, 1, false, {}}, *be, *comm);

  const StReader file(path);
  const StTensorInfo* counter = file.find("bn1.num_batches_tracked");
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ(counter->dtype, "I64");
  EXPECT_TRUE(counter->shape.empty()) << "num_batches_tracked must be 0-dim";
  int64_t count = 0;
  ASSERT_EQ(counter->bytes(), sizeof(count));
  file.read(*counter, 0, &count, sizeof(count));
  EXPECT_EQ(count, 1007);
  const StTensorInfo* mean = file.find("bn1.running_mean");
  ASSERT_NE(mean, nullptr);
  EXPECT_EQ(mean->dtype, "F32");
  EXPECT_EQ(mean->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(st_as_f32(file.read_tensor(*mean), path), model.values(model.buffer(0)));
  // Buffers have no momentum; params do.
  EXPECT_EQ(file.find("optim.bn1.running_mean.momentum_buffer"), nullptr);
  EXPECT_EQ(file.find("optim.bn1.num_batches_tracked.momentum_buffer"), nullptr);
  EXPECT_NE(file.find("optim.bn1.weight.momentum_buffer"), nullptr);
  EXPECT_EQ(file.tensors().size(), 2u * 2u + 3u);

  // Load into another model: every buffer comes back, the counter as a float.
  BnModel other(*be, true, -50.f);
  load_checkpoint(path, *other.store, *be, true);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(other.values(other.buffer(i)), model.values(model.buffer(i))) << other.buffer(i).name;
  EXPECT_EQ(other.buffer(2).value.f32()[0], 1007.f);

  // --init-from takes buffers too.
  BnModel fresh(*be, true, -90.f);
  const InitFromReport report = init_from_checkpoint(path, *fresh.store, {}, *be);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unused.empty());
  EXPECT_EQ(report.loaded.size(), 5u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(fresh.values(fresh.buffer(i)), model.values(model.buffer(i))) << fresh.buffer(i).name;
}

TEST(CheckpointBuffers, AMissingBufferOrAFloatCounterIsAnErrorNamingFileAndTensor) {
  TempDir dir;
  auto be = make_cpu_backend();
  auto comm = make_local_communicator();
  const ModelConfig cfg = checkpoint_config();
  const std::string path = dir.file("no_buffers.safetensors");
  BnModel without(*be, false, 1.f);
  save_checkpoint(path, *without.store, CheckpointMeta{cfg, 4, 1, false, {}}, *be, *comm);
  BnModel model(*be, true, 2.f);
  expect_error([&] { load_checkpoint(path, *model.store, *be, false); },
               {path, "tensor 'bn1.running_mean' is missing", "(3)"});
  const InitFromReport report = init_from_checkpoint(path, *model.store, {}, *be);
  EXPECT_EQ(report.missing.size(), 3u);

  // num_batches_tracked written as F32: PyTorch's is int64, so it is refused.
  StFile f;
  const std::vector<float> three = {1.f, 2.f, 3.f}, one = {5.f};
  for (const char* name : {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"})
    f.tensors.push_back(st_f32(name, {3}, three.data()));
  f.tensors.push_back(st_f32("bn1.num_batches_tracked", {}, one.data()));
  const std::string bad = dir.file("float_counter.safetensors");
  write_safetensors(bad, f);
  expect_error([&] { load_checkpoint(bad, *model.store, *be, false); },
               {bad, "tensor 'bn1.num_batches_tracked'", "expected dtype I64, got F32"});
}

// Rank 1 of 2 (no peer exists: every collective and send throws): replicated params and
// buffers are written from rank 0's copy, so rank 1 sends nothing.
class NoTrafficComm : public Communicator {
 public:
  explicit NoTrafficComm(int rank) : rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  std::string name() const override { return "no-traffic"; }
  std::unique_ptr<CommHandle> all_reduce_async(float*, size_t) override { fail(); }
  std::unique_ptr<CommHandle> all_gather_async(const float*, float*,
                                               const std::vector<size_t>&) override { fail(); }
  std::unique_ptr<CommHandle> reduce_scatter_async(const float*, float*,
                                                   const std::vector<size_t>&) override { fail(); }
  std::unique_ptr<CommHandle> broadcast_async(float*, size_t, int) override { fail(); }
  std::unique_ptr<CommHandle> reduce_async(float*, size_t, int) override { fail(); }
  std::unique_ptr<CommHandle> send_async(const float*, size_t, int) override { fail(); }
  std::unique_ptr<CommHandle> recv_async(float*, size_t, int) override { fail(); }
  void barrier() override { fail(); }
  [[noreturn]] void abort_all(const std::string& m, int) override { throw std::runtime_error(m); }

 private:
  [[noreturn]] static void fail() { throw std::logic_error("a replicated tensor moved between workers"); }
  int rank_;
};

TEST(CheckpointBuffers, TwoWorkersWriteRankZerosCopyWithoutCommunicating) {
  TempDir dir;
  auto be = make_cpu_backend();
  const ModelConfig cfg = checkpoint_config();
  const std::string path = dir.file("two.safetensors");
  BnModel rank0(*be, true, 3.f), rank1(*be, true, 400.f);  // running stats that differ
  NoTrafficComm comm0(0), comm1(1);
  save_checkpoint(path, *rank1.store, CheckpointMeta{cfg, 4, 1, false, {}}, *be, comm1);
  save_checkpoint(path, *rank0.store, CheckpointMeta{cfg, 4, 1, false, {}}, *be, comm0);
  BnModel loaded(*be, true, -1.f);
  load_checkpoint(path, *loaded.store, *be, true);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(loaded.values(loaded.buffer(i)), rank0.values(rank0.buffer(i)))
        << loaded.buffer(i).name;
}

}  // namespace
}  // namespace owt::test
