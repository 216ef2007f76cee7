// Names of the parallel scheme's enums and the parsing of the model file's `parallel:` mapping.
#include "owt/parallel/network_spec.h"

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
  map.check_all_used();
  return p;
}

}  // namespace owt
