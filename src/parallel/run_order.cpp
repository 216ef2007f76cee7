// RunOrder: in-place layers and the gradient slots of backward over a layer graph; HybridStep
// runs exactly this and the memory model counts it.
#include "owt/parallel/run_order.h"

#include <algorithm>

#include "owt/core/error.h"

namespace owt {

std::vector<bool> in_place_layers(const Network& net) {
  std::vector<bool> in_place(net.size(), false);
  for (size_t i = 1; i + 1 < net.size(); ++i) {
    const std::vector<size_t>& in = net.inputs_of(i);
    if (!net.layer(i).can_run_in_place() || in.size() != 1 || in[0] == Network::kNetworkInput)
      continue;
    in_place[i] = net.consumers_of(in[0]) == 1 && !net.layer(in[0]).backward_needs_output();
  }
  return in_place;
}

BackwardSlots plan_backward(const Network& net, const std::vector<bool>& in_place, size_t begin,
                            size_t end, bool want_dx) {
  BackwardSlots s;
  s.steps.resize(end - begin);
  std::vector<int> grad_slot(net.size(), BackwardSlots::kNone);  // slot of layer p's output gradient
  std::vector<int> free;                                          // slots not in use
  auto acquire = [&](int64_t width, size_t layer) {
    int k;
    if (free.empty()) {
      k = static_cast<int>(s.slot_width.size());
      s.slot_width.push_back(0);
      s.slot_layer.push_back(layer);
    } else {
      auto lowest = std::min_element(free.begin(), free.end());
      k = *lowest;
      free.erase(lowest);
    }
    if (width > s.slot_width[k]) s.slot_width[k] = width, s.slot_layer[k] = layer;
    return k;
  };
  for (size_t i = end; i-- > begin;) {
    BackwardSlots::Step& st = s.steps[i - begin];
    st.dy = i + 1 == end ? BackwardSlots::kStageGradient : grad_slot[i];
    OWT_CHECK(st.dy != BackwardSlots::kNone, "layer ", net.layer(i).name(), " has no output gradient");
    const std::vector<size_t>& inputs = net.inputs_of(i);
    std::vector<int> spares;
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t p = inputs[k];
      const bool outside = p == Network::kNetworkInput || p < begin;
      int dx = BackwardSlots::kNone, target = BackwardSlots::kNone;
      bool add = false;
      if (!outside || want_dx) {
        const int64_t width = p == Network::kNetworkInput ? net.input_shape(i).numel()
                                                         : net.output_shape(p).numel();
        int& holder = outside ? s.input_slot : grad_slot[p];
        if (in_place[i]) {
          holder = dx = st.dy;  // dx is dy itself, reshaped
        } else if (holder == BackwardSlots::kNone) {
          holder = dx = acquire(width, i);
        } else {
          dx = acquire(width, i);
          add = true;
          spares.push_back(dx);
        }
        target = holder;
      }
      st.dx.push_back(dx);
      st.add_into.push_back(add);
      st.target.push_back(target);
    }
    free.insert(free.end(), spares.begin(), spares.end());
    if (st.dy >= 0 && !in_place[i]) free.push_back(st.dy);
  }
  return s;
}

}  // namespace owt
