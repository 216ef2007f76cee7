// The one place where the nn tests spell out LayerPlacement's fields and a Param's layout:
// how a test places a layer on the workers, whether its output is a feature shard, and whether a
// param is a shard. The placement API is being reworked; a change there touches these lines only.
#pragma once
#include <cstdint>

#include "owt/nn/layer.h"
#include "owt/nn/param.h"

namespace owt::test {

// How a test places a layer.
enum class TestPlacement {
  Data,                // data-parallel, one worker: LayerPlacement{}
  ModelShardedOutput,  // model-parallel over `workers`, rank 0, every row of the batch as
                       // input, a column-parallel linear's output left a feature shard
  Model,               // the same with the output gathered
};

inline LayerPlacement layer_placement(TestPlacement how, int workers = 1) {
  LayerPlacement p;
  if (how == TestPlacement::Data) return p;
  p.rank = 0;
  p.workers = workers;
  p.model_parallel = true;
  p.input = Placement::replicate();
  p.gather_output = how == TestPlacement::Model;
  return p;
}

// When the layer's output is a feature shard (a column-parallel linear that does not gather):
// its first column and the full width.
inline bool output_feature_shard(const Layer& layer, int64_t* col0, int64_t* cols_total) {
  const Placement out = layer.output_placement();
  if (!out.is_feature_shard()) return false;
  *col0 = out.begin;
  *cols_total = out.size;
  return true;
}

// The param's value is this worker's slice of the full tensor.
inline bool param_is_sharded(const Param& p) { return p.sharded(); }

}  // namespace owt::test
