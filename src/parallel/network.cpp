// Network construction: each layer's YAML goes to its factory; the keys every layer may carry
// (parallel, split, lr_mult, wd_mult, freeze) are read here; the plan places the layers; shapes
// and placements are chained from the input to the loss.
#include "owt/parallel/network.h"

#include <set>

#include "owt/nn/registry.h"

namespace owt {
namespace {

std::string layer_what(const YAML::Node& node, size_t index) {
  if (node.IsMap() && node["name"] && node["name"].IsScalar())
    return cat("layer '", node["name"].Scalar(), "'");
  return cat("layer ", index + 1);
}

// Runs layer.setup, turning a shape the layer cannot take into an error at the layer's line.
Shape setup_at(Layer& layer, const Shape& in, const LayerPlacement& place, const std::string& where) {
  try {
    return layer.setup(in, place);
  } catch (const Error& e) {
    throw Error(cat(where, ": ", e.what()));
  }
}

}  // namespace

Network::Network(const NetworkSpec& spec, int rank, int workers, ParallelMode mode)
    : rank_(rank), workers_(workers) {
  const std::vector<LayerKeys> keys = build_layers(spec);
  const Plan plan = make_plan(describe_for_plan(spec, keys), mode);
  transition_ = plan.transition;
  place_layers(spec, plan, keys);
}

std::vector<Network::LayerKeys> Network::build_layers(const NetworkSpec& spec) {
  std::vector<LayerKeys> keys;
  std::set<std::string> names;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    ConfigMap lc(spec.layers[i], spec.file, layer_what(spec.layers[i], i));
    std::unique_ptr<Layer> layer = make_layer(lc);
    LayerKeys k;
    k.parallel = lc.get_enum<LayerParallel>(
        "parallel", {{"data", LayerParallel::Data}, {"model", LayerParallel::Model}},
        LayerParallel::Default);
    k.split = lc.get_enum<LinearSplit>(
        "split", {{"auto", LinearSplit::Auto}, {"output", LinearSplit::Output}, {"input", LinearSplit::Input}},
        LinearSplit::Auto);
    k.lr_mult = lc.get_float("lr_mult", 1.0);
    if (k.lr_mult < 0) lc.fail("lr_mult", "must be zero or positive");
    k.wd_mult = lc.get_float("wd_mult", 1.0);
    if (k.wd_mult < 0) lc.fail("wd_mult", "must be zero or positive");
    k.freeze = lc.get_bool("freeze", false);
    k.where = lc.where("parallel");
    lc.check_all_used();
    if (!names.insert(layer->name()).second)
      throw Error(cat(lc.where("name"), ": ", lc.what(), ": the name is used by an earlier layer"));
    const bool is_loss = layer->as_loss() != nullptr;
    if (is_loss != (i + 1 == spec.layers.size()))
      throw Error(cat(lc.where("type"), ": ", lc.what(),
                      is_loss ? ": the loss must be the last layer"
                              : ": the last layer must be a loss (softmax_cross_entropy)"));
    if (k.parallel == LayerParallel::Model && !layer->supports_model_parallel())
      throw Error(cat(lc.where("parallel"), ": ", lc.what(), ": a ", layer->type(),
                      " layer cannot be model-parallel (only linear layers can)"));
    if (lc.has("split") && !layer->supports_model_parallel())
      throw Error(cat(lc.where("split"), ": ", lc.what(), ": only model-parallel linear layers "
                      "have a split"));
    keys.push_back(k);
    layers_.push_back(std::move(layer));
  }
  return keys;
}

std::vector<PlanLayer> Network::describe_for_plan(const NetworkSpec& spec,
                                                  const std::vector<LayerKeys>& keys) {
  std::vector<PlanLayer> out(size());
  Shape probe = spec.input;
  for (size_t i = 0; i < size(); ++i) {
    Layer& layer = *layers_[i];
    PlanLayer& pl = out[i];
    pl.name = layer.name();
    pl.where = keys[i].where;
    pl.parallel = keys[i].parallel;
    pl.split = keys[i].split;
    pl.supports_model_parallel = layer.supports_model_parallel();
    pl.preserves_feature_shard = layer.preserves_feature_shard();
    pl.is_loss = layer.as_loss() != nullptr;
    pl.has_params = !layer.params().empty();
    pl.in_width = probe.numel();
    probe = setup_at(layer, probe, LayerPlacement{}, keys[i].where);
    pl.out_width = probe.numel();
  }
  return out;
}

void Network::place_layers(const NetworkSpec& spec, const Plan& plan,
                           const std::vector<LayerKeys>& keys) {
  Shape shape = spec.input;
  Placement input = Placement::rows();
  for (size_t i = 0; i < size(); ++i) {
    Layer& layer = *layers_[i];
    // The transition: from here on every worker sees every row of the global batch.
    if (has_model_parallel_stage() && i == transition_) input = Placement::replicate();
    LayerPlacement place;
    place.rank = rank_;
    place.workers = workers_;
    place.model_parallel = plan.model_parallel[i];
    place.gather_output = plan.gather_output[i];
    place.input = input;
    in_shapes_.push_back(shape);
    shape = setup_at(layer, shape, place, keys[i].where);
    out_shapes_.push_back(shape);
    input = layer.output_placement();
    for (Param* p : layer.params()) {
      // A replicated param's gradient is Partial where the layer saw only this worker's rows
      // (summed over workers in buckets); in the model-parallel stage it is complete.
      p->grad_placement = p->sharded() ? p->placement
                          : place.input.is_shard(0) ? Placement::partial() : Placement::replicate();
      p->lr_mult = static_cast<float>(keys[i].lr_mult);
      p->wd_mult = static_cast<float>(keys[i].wd_mult);
      p->frozen = keys[i].freeze;
    }
  }
  const Placement& logits = placement(size() - 1).input;
  const int64_t classes = logits.is_feature_shard() ? logits.size : in_shapes_.back().numel();
  if (classes != spec.classes)
    throw Error(cat(spec.file, ": the last layer before the loss gives ", classes,
                    " outputs but the model has classes: ", spec.classes));
}

std::vector<Param*> Network::params() {
  std::vector<Param*> out;
  for (auto& l : layers_)
    for (Param* p : l->params()) out.push_back(p);
  return out;
}

}  // namespace owt
