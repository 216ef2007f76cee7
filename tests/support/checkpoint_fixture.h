// A model-like set of params for checkpoint tests, sharded for rank r of K (replicated conv and
// bias, Shard(0) and Shard(1) linear weights with uneven and empty shards), and two buffers (a
// running variance and an integer counter), whose value and momentum are a function of (name,
// full element) only, so any K can be checked against any.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/nn/param_store.h"
#include "owt/train/model_config.h"

namespace owt::test {

class CheckpointModel {
 public:
  // The params as rank `rank` of `workers` holds them, bound and filled with keyed values.
  CheckpointModel(int rank, int workers, Backend& backend);
  CheckpointModel(const CheckpointModel&) = delete;
  CheckpointModel& operator=(const CheckpointModel&) = delete;
  const ParamStore& store() const { return *store_; }
  // Sets every value and momentum to zero (before a load).
  void clear(Backend& backend);
  // Adds a failure for every local element that is not its keyed value (and momentum when
  // `with_state`).
  void expect_keyed(Backend& backend, bool with_state) const;

 private:
  std::vector<Param> params_, buffers_;
  std::unique_ptr<ParamStore> store_;
};

// The model config its checkpoints are saved with (name "ckpt", seed 9).
ModelConfig checkpoint_config();

// The keyed value of full element `e` of param `name` (momentum when `state`): exact in float.
float keyed_value(const std::string& name, int64_t e, bool state);

// The whole tensor of `p` (its full shape) with keyed values, as a gather would give it.
std::vector<float> keyed_whole(const Param& p, bool state);

}  // namespace owt::test
