// NetworkSpec: what parallel/ needs of a model file to build and place a network — the layers
// (YAML until the nn registry builds them), the input, the classes and the parallel scheme.
// train's ModelConfig holds one beside the data and solver settings that parallel/ never sees.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "owt/core/config_map.h"
#include "owt/core/shape.h"
#include "owt/parallel/plan.h"

namespace owt {

// How activations cross from the data-parallel to the model-parallel stage (the OWT paper's
// schemes): (a) all-gather every worker's rows, then one FC pass over the global batch;
// (b) pipelined: worker j's rows are broadcast while block j-1 runs the FC stage.
enum class Transition { Allgather, Pipelined };
// When the model-parallel stage's params update: once per step (gradients of all K blocks
// accumulate), or after every pipelined block (the paper's variable batch size).
enum class FcUpdate { Step, Block };

// What `parallel: auto` decides from (auto_parallel.h): measured files (`profile`, `comm`,
// paths as written or relative to the model file's folder) or a device's figures
// (`bandwidth_gbs` per worker link, `tflops` sustained per worker, and the share `overlap` of
// asynchronous collectives hidden under compute, 0 unless given).
struct AutoParallelInputs {
  std::string profile, comm;
  double bandwidth_gbs = 0, tflops = 0, overlap = 0;
  std::string where;  // "file:line" of the `parallel` mapping, for errors
  bool measured() const { return !profile.empty(); }
  bool figures() const { return bandwidth_gbs > 0; }
};

struct ParallelSpec {
  Transition transition = Transition::Allgather;
  FcUpdate fc_update = FcUpdate::Step;
  // `default:` the `parallel` of every layer without its own key (Default: linear layers
  // model-parallel, the rest data-parallel).
  LayerParallel default_layer = LayerParallel::Default;
  AutoParallelInputs auto_inputs;
};

const char* transition_name(Transition t);  // "allgather" | "pipelined"
const char* fc_update_name(FcUpdate u);     // "step" | "block"

// The model file's `parallel:` mapping; file:line errors for unknown or inconsistent values.
ParallelSpec parse_parallel_spec(ConfigMap& map);

struct NetworkSpec {
  std::string file;                // the model file, named in errors
  Shape input;                     // (C, H, W) of one example
  int64_t classes = 0;
  std::vector<YAML::Node> layers;  // in order; the last is the loss
  ParallelSpec parallel;
};

}  // namespace owt
