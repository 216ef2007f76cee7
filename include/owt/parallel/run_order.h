// RunOrder: how HybridStep walks a network's layer graph: which layers write their output over
// their input, and which gradient buffer ("slot") holds each activation gradient in backward.
#pragma once
#include <cstdint>
#include <vector>

#include "owt/parallel/network.h"

namespace owt {

// Layer i writes its output over its only input when it can (elementwise layers), its input
// is another layer's output read by nothing else, and that layer's backward does not read its
// own output. Never the first layer (its input is the caller's batch) or the loss.
std::vector<bool> in_place_layers(const Network& net);

// Backward over layers [begin, end) (a stage), in reverse file order. A layer's dy lives in a
// slot of a small pool; the gradient of an output read by several layers is the sum of their
// contributions: the first writes the slot, the others write a spare slot that is then added.
// A slot is free again once the layer whose dy it holds has run. For a chain this is the
// ping-pong pair of two slots.
struct BackwardSlots {
  static constexpr int kStageGradient = -1;  // the dy handed to the stage (dlogits, da_local)
  static constexpr int kNone = -2;           // no gradient wanted (the network's input)
  struct Step {
    int dy = kNone;              // slot of the layer's output gradient
    std::vector<int> dx;         // per input: the slot backward writes, or kNone
    std::vector<bool> add_into;  // per input: dx is a spare, added into the input's slot after
    std::vector<int> target;     // per input: the slot that holds that input's gradient
  };
  std::vector<Step> steps;        // indexed by layer - begin
  std::vector<int64_t> slot_width;  // the largest gradient (elements per example) each slot holds
  std::vector<size_t> slot_layer;   // the layer whose input gradient that is
  int input_slot = kNone;          // the slot of the stage input's gradient (want_dx)
};

// want_dx: the gradient w.r.t. the stage's input (the layer before `begin`, or the batch) is
// wanted; inputs from outside the stage are that input.
BackwardSlots plan_backward(const Network& net, const std::vector<bool>& in_place, size_t begin,
                            size_t end, bool want_dx);

}  // namespace owt
