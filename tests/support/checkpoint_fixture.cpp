// CheckpointModel (checkpoint_fixture.h): params of every placement a checkpoint must place,
// with values computed from (name, full element) so that shards of any K agree.
#include "support/checkpoint_fixture.h"

#include <gtest/gtest.h>

#include <cmath>

#include "owt/core/philox.h"
#include "owt/nn/init.h"

namespace owt::test {
namespace {

// Full element `e` of `p` lives on this worker at local index *local (if it does).
bool local_index(const Param& p, int64_t e, int64_t* local) {
  if (!p.sharded()) {
    *local = e;
    return true;
  }
  const int axis = p.placement.dim;
  int64_t inner = 1;
  for (int d = axis + 1; d < p.full_shape.rank(); ++d) inner *= p.full_shape[d];
  const int64_t full = p.full_shape[axis], n = p.placement.end - p.placement.begin;
  const int64_t o = e / (full * inner), a = e / inner % full, i = e % inner;
  if (a < p.placement.begin || a >= p.placement.end) return false;
  *local = (o * n + (a - p.placement.begin)) * inner + i;
  return true;
}

}  // namespace

float keyed_value(const std::string& name, int64_t e, bool state) {
  // A multiple of 1/64 below 2^16: distinct per element, exact in float.
  const uint32_t h = name_hash(name.c_str()) ^ (state ? 0x9e3779b9u : 0u);
  return static_cast<float>((h + static_cast<uint32_t>(e) * 2654435761u) % 4194304u) / 64.f - 32768.f;
}

std::vector<float> keyed_whole(const Param& p, bool state) {
  std::vector<float> v(p.full_shape.numel());
  for (int64_t e = 0; e < static_cast<int64_t>(v.size()); ++e)
    v[e] = p.integer ? std::floor(keyed_value(p.name, e, state)) : keyed_value(p.name, e, state);
  return v;
}

CheckpointModel::CheckpointModel(int rank, int workers, Backend& backend) {
  const InitSpec none{};
  params_.push_back(make_replicated_param("conv1.weight", Shape{3, 2, 3, 3}, none));
  params_.push_back(make_replicated_param("conv1.bias", Shape{3}, none));
  // Column-parallel: 7 classes over 2, 3, 4 workers (uneven).
  params_.push_back(make_sharded_param("fc1.weight", Shape{7, 5}, 0, rank, workers, none));
  params_.push_back(make_sharded_param("fc1.bias", Shape{7}, 0, rank, workers, none));
  // Row-parallel (out, in) split on in: each worker's rows are strided in the file.
  params_.push_back(make_sharded_param("fc2.weight", Shape{4, 7}, 1, rank, workers, none));
  params_.push_back(make_replicated_param("fc2.bias", Shape{4}, none));
  params_.push_back(make_sharded_param("head.weight", Shape{37, 11}, 1, rank, workers, none));
  // Two rows: on 3 or 4 workers some hold none.
  params_.push_back(make_sharded_param("tiny.weight", Shape{2, 3}, 0, rank, workers, none));
  // Buffers (BatchNorm's): replicated values only; an integer counter saved as a 0-dim I64.
  buffers_.push_back(make_replicated_param("bn.running_var", Shape{3}, none));
  buffers_.push_back(make_replicated_param("bn.num_batches_tracked", Shape{}, none));
  buffers_.back().integer = true;
  std::vector<Param*> ptrs, buffer_ptrs;
  for (Param& p : params_) ptrs.push_back(&p);
  for (Param& b : buffers_) buffer_ptrs.push_back(&b);
  store_ = std::make_unique<ParamStore>(ptrs, buffer_ptrs, backend);
  for (const Param& b : buffers_) {
    const std::vector<float> whole = keyed_whole(b, false);
    backend.from_host(whole.data(), b.value.f32(), whole.size() * sizeof(float));
  }
  for (const Param& p : params_)
    for (bool state : {false, true}) {
      const Tensor& t = state ? p.state : p.value;
      std::vector<float> mine(t.numel());
      const std::vector<float> whole = keyed_whole(p, state);
      for (int64_t e = 0, l = 0; e < static_cast<int64_t>(whole.size()); ++e)
        if (local_index(p, e, &l)) mine[l] = whole[e];
      backend.from_host(mine.data(), t.f32(), mine.size() * sizeof(float));
    }
}

void CheckpointModel::clear(Backend& backend) {
  for (const Param& p : params_)
    for (const Tensor* t : {&p.value, &p.state}) {
      std::vector<float> zero(t->numel(), 0.f);
      backend.from_host(zero.data(), t->f32(), zero.size() * sizeof(float));
    }
  for (const Param& b : buffers_) {
    std::vector<float> zero(b.value.numel(), 0.f);
    backend.from_host(zero.data(), b.value.f32(), zero.size() * sizeof(float));
  }
}

void CheckpointModel::expect_keyed(Backend& backend, bool with_state) const {
  for (const Param& p : params_)
    for (bool state : {false, true}) {
      if (state && !with_state) continue;
      const Tensor& t = state ? p.state : p.value;
      std::vector<float> mine(t.numel());
      backend.to_host(t.f32(), mine.data(), mine.size() * sizeof(float));
      int bad = 0;
      for (int64_t e = 0, l = 0; e < p.full_shape.numel(); ++e)
        if (local_index(p, e, &l) && mine[l] != keyed_value(p.name, e, state) && bad++ < 3)
          ADD_FAILURE() << p.name << (state ? " momentum" : "") << " " << p.placement.str()
                        << ": full element " << e << " is " << mine[l] << ", expected "
                        << keyed_value(p.name, e, state);
    }
  for (const Param& b : buffers_) {
    std::vector<float> got(b.value.numel());
    backend.to_host(b.value.f32(), got.data(), got.size() * sizeof(float));
    EXPECT_EQ(got, keyed_whole(b, false)) << "buffer " << b.name;
  }
}

ModelConfig checkpoint_config() {
  ModelConfig cfg;
  cfg.name = "ckpt";
  cfg.text = "name: ckpt\n";
  cfg.seed = 9;
  return cfg;
}

}  // namespace owt::test
