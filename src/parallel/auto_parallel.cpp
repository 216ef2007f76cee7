// choose_parallel: every admissible transition position among the auto layers, each predicted
// by predict_step on a copy of the model whose auto keys are replaced by data or model.
#include "owt/parallel/auto_parallel.h"

#include <algorithm>

#include "owt/core/error.h"
#include "owt/parallel/network.h"
#include "owt/parallel/step_time_model.h"

namespace owt {
namespace {

// The layer's own `parallel` key as written, "" when absent.
std::string parallel_key(const YAML::Node& layer) {
  return layer.IsMap() && layer["parallel"] && layer["parallel"].IsScalar() ? layer["parallel"].Scalar() : "";
}

// Indices of the layers whose parallel is auto (their own key, or the default on a linear).
std::vector<size_t> auto_layers(const NetworkSpec& spec) {
  Network one(spec, 0, 1, ParallelMode::DataOnly);  // shapes and abilities only
  std::vector<size_t> out;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const std::string key = parallel_key(spec.layers[i]);
    const bool is_auto = key == "auto" || (key.empty() && one.layer(i).supports_model_parallel() &&
                                           spec.parallel.default_layer == LayerParallel::Auto);
    if (is_auto) out.push_back(i);
  }
  return out;
}

// `spec` with the auto layers before `first` data-parallel and the rest model-parallel, on
// copies of their nodes. The key is removed before it is set: reading a missing key through a
// non-const YAML::Node (ConfigMap does) leaves an undefined entry behind, YAML::Clone shares
// that entry's value node, and assigning to it would write into the caller's model too.
NetworkSpec with_choice(const NetworkSpec& spec, const std::vector<size_t>& autos, size_t first) {
  NetworkSpec out = spec;
  if (out.parallel.default_layer == LayerParallel::Auto) out.parallel.default_layer = LayerParallel::Default;
  for (size_t i : autos) {
    YAML::Node layer = YAML::Clone(spec.layers[i]);
    layer.remove("parallel");
    layer["parallel"] = i < first ? "data" : "model";
    out.layers[i].reset(layer);
  }
  return out;
}

}  // namespace

std::string AutoCandidate::describe() const {
  return first_model.empty() ? std::string("every auto layer data-parallel") : cat("model-parallel from ", first_model);
}

// From the keys alone, without building the network: this runs before every multi-worker run.
// (`default: auto` on a model without linear layers is refused when the file is read.)
bool has_auto_parallel(const NetworkSpec& spec) {
  if (spec.parallel.default_layer == LayerParallel::Auto) return true;
  return std::any_of(spec.layers.begin(), spec.layers.end(),
                     [](const YAML::Node& layer) { return parallel_key(layer) == "auto"; });
}

AutoChoice choose_parallel(const NetworkSpec& spec, int K, int64_t b, const StepProfile& profile,
                           const CommCalibration& comm) {
  AutoChoice choice;
  choice.inputs = cat(profile.file, " and ", comm.file);
  const std::vector<size_t> autos = auto_layers(spec);
  if (autos.empty()) {
    choice.spec = spec;
    return choice;
  }
  choice.any_auto = true;
  std::vector<std::pair<AutoCandidate, NetworkSpec>> tried;
  std::vector<size_t> firsts = autos;
  firsts.push_back(spec.layers.size());  // none of them model-parallel
  for (size_t first : firsts) {
    NetworkSpec candidate = with_choice(spec, autos, first);
    AutoCandidate c;
    c.first_model = first < spec.layers.size() ? spec.layers[first]["name"].Scalar() : "";
    try {
      c.step_seconds = predict_step(candidate, K, b, ParallelMode::Owt, profile, comm).seconds;
    } catch (const Error&) {
      continue;  // e.g. a data-parallel layer after one the file made model-parallel
    }
    tried.emplace_back(c, candidate);
  }
  if (tried.empty())
    throw Error(cat(spec.parallel.auto_inputs.where, ": parallel: auto: no placement of the auto layers is "
                    "admissible (data-parallel layers must come before model-parallel ones)"));
  // Fastest first; a tie keeps the earlier transition (more model parallelism), as the
  // default plan would.
  std::stable_sort(tried.begin(), tried.end(),
                   [](const auto& x, const auto& y) { return x.first.step_seconds < y.first.step_seconds; });
  for (const auto& t : tried) choice.candidates.push_back(t.first);
  // Moved, never assigned over: YAML::Node's assignment writes into the node it shares with
  // the caller's model (set_ref) instead of rebinding.
  choice.spec = std::move(tried.front().second);
  return choice;
}

StepProfile profile_from_flops(const NetworkSpec& spec, int64_t batch, double flops) {
  Network one(spec, 0, 1, ParallelMode::DataOnly);
  StepProfile p;
  p.file = cat(flops / 1e12, " TFLOP/s");
  p.batch = batch;
  for (size_t i = 0; i < one.size(); ++i) {
    const double forward = one.layer(i).forward_flops() * static_cast<double>(batch) / flops;
    p.layers.push_back({one.layer(i).name(), forward, 2 * forward});
    p.step_seconds += 3 * forward;
  }
  return p;
}

CommCalibration calibration_from_bandwidth(double bandwidth, int K, double overlap) {
  CommCalibration c;
  c.file = cat("assumed ", bandwidth / 1e9, " GB/s per worker, overlap ", overlap);  // for messages
  c.communicator = "figures";
  c.workers = std::max(2, K);
  c.overlap = overlap;
  for (CommOp op : {CommOp::AllReduce, CommOp::AllGather, CommOp::ReduceScatter, CommOp::Broadcast,
                    CommOp::Reduce}) {
    CommOpTimings t;
    t.op = op;
    t.fit = {0, ring_traffic(op, c.workers) / bandwidth};
    t.points = {{1, t.fit.seconds(1)}, {1e15, t.fit.seconds(1e15)}};
    c.ops.push_back(t);
  }
  return c;
}

AutoChoice choose_parallel_from_figures(const NetworkSpec& spec, int K, int64_t b, double bandwidth_gbs,
                                       double tflops, double overlap) {
  AutoChoice c = choose_parallel(spec, K, b, profile_from_flops(spec, b, tflops * 1e12),
                                 calibration_from_bandwidth(bandwidth_gbs * 1e9, K, overlap));
  c.inputs = cat(bandwidth_gbs, " GB/s, ", tflops, " TFLOP/s and overlap ", overlap);
  return c;
}

AutoChoice resolve_auto_parallel(const NetworkSpec& spec, int K, int64_t b) {
  AutoChoice none;
  none.spec = spec;
  if (K <= 1 || !has_auto_parallel(spec)) return none;
  const AutoParallelInputs& in = spec.parallel.auto_inputs;
  if (in.measured()) {
    const StepProfile profile = load_step_profile(in.profile);  // this one first, then comm
    return choose_parallel(spec, K, b, profile, load_comm_calibration(in.comm));
  }
  if (in.figures()) return choose_parallel_from_figures(spec, K, b, in.bandwidth_gbs, in.tflops, in.overlap);
  throw Error(cat(spec.file, ": parallel: auto needs what to decide from: in the parallel mapping, "
                  "profile and comm (measured files) or bandwidth_gbs and tflops"));
}

}  // namespace owt
