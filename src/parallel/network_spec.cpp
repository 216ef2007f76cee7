// Names of the parallel scheme's enums and the parsing of the model file's `parallel:` mapping.
#include "owt/parallel/network_spec.h"

#include <filesystem>

namespace owt {

const char* transition_name(Transition t) {
  return t == Transition::Pipelined ? "pipelined" : "allgather";
}

const char* fc_update_name(FcUpdate u) { return u == FcUpdate::Block ? "block" : "step"; }

ParallelSpec parse_parallel_spec(ConfigMap& map) {
  ParallelSpec p;
  p.transition = map.get_enum<Transition>(
      "transition", {{"allgather", Transition::Allgather}, {"pipelined", Transition::Pipelined}},
      Transition::Allgather);
  p.fc_update = map.get_enum<FcUpdate>("fc_update", {{"step", FcUpdate::Step}, {"block", FcUpdate::Block}},
                                       FcUpdate::Step);
  if (p.fc_update == FcUpdate::Block && p.transition != Transition::Pipelined)
    map.fail("fc_update", "block updates happen between pipelined blocks: they need "
                          "transition: pipelined");
  p.default_layer = map.get_enum<LayerParallel>(
      "default", {{"auto", LayerParallel::Auto}, {"data", LayerParallel::Data}, {"model", LayerParallel::Model}},
      LayerParallel::Default);
  AutoParallelInputs& in = p.auto_inputs;
  in.where = map.where("default");
  const std::string folder = std::filesystem::path(map.file()).parent_path().string();
  auto relative = [&](const std::string& path) {
    return path.empty() || path.front() == '/' || folder.empty() ? path : folder + "/" + path;
  };
  in.profile = relative(map.get_string("profile", ""));
  in.comm = relative(map.get_string("comm", ""));
  if (in.profile.empty() != in.comm.empty())
    map.fail(in.profile.empty() ? "comm" : "profile", "profile and comm go together (owt bench "
             "MODEL --profile --json; mpirun -np K owt bench --comm --json)");
  in.bandwidth_gbs = map.get_float("bandwidth_gbs", 0);
  in.tflops = map.get_float("tflops", 0);
  in.overlap = map.get_float("overlap", 0);
  if (in.overlap < 0 || in.overlap > 1) map.fail("overlap", "must lie in [0, 1]");
  if (map.has("overlap") && !(in.bandwidth_gbs > 0))
    map.fail("overlap", "goes with bandwidth_gbs and tflops (measured files carry their own)");
  if ((in.bandwidth_gbs > 0) != (in.tflops > 0) || in.bandwidth_gbs < 0 || in.tflops < 0)
    map.fail(in.bandwidth_gbs > 0 ? "tflops" : "bandwidth_gbs",
             "bandwidth_gbs and tflops go together, both > 0");
  if (in.measured() && in.figures())
    map.fail("bandwidth_gbs", "give either profile and comm (measured) or bandwidth_gbs and tflops, not both");
  if (p.default_layer == LayerParallel::Auto && !in.measured() && !in.figures())
    map.fail("default", "auto decides from measurements or figures: add profile and comm, or "
                        "bandwidth_gbs and tflops, to this mapping");
  map.check_all_used();
  return p;
}

}  // namespace owt
