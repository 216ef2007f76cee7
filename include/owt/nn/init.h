// Parameter declaration and keyed initialisation. Draws are indexed by (seed, param name,
// element index in the *full* tensor), so a shard holds exactly its rows of the unsharded init.
#pragma once
#include <string>
#include <vector>

#include "owt/backend/backend.h"
#include "owt/nn/param.h"

namespace owt {

// `init:` choices of conv and linear layers: "default" is PyTorch's (weight and bias
// U(-1/sqrt(fan_in), 1/sqrt(fan_in))); "he" is N(0, 2/fan_in) weights and zero bias.
const std::vector<std::string>& init_choices();
InitSpec weight_init(const std::string& choice, int64_t fan_in);
InitSpec bias_init(const std::string& choice, int64_t fan_in);

Param make_replicated_param(std::string name, Shape shape, InitSpec init);
// Sharded along `axis`: this worker holds [shard_begin, shard_end) of full_shape[axis].
Param make_sharded_param(std::string name, Shape full_shape, int axis, int rank, int workers,
                         InitSpec init);

// Fills p.value (already bound to memory) with its keyed initial values: drawn on the OpenMP
// threads and copied to the device 64 MiB at a time (no host copy of the whole shard); the
// values do not depend on the thread count.
void initialize_param(Param& p, uint64_t seed, Backend& backend);

}  // namespace owt
