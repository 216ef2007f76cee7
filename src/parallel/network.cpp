// Network construction: each layer's YAML goes to its factory; the keys every layer may carry
// (parallel, split, lr_mult, wd_mult, bias_wd_mult, freeze, inputs) are read here; the `inputs` graph is
// checked; the plan places the layers; shapes and placements flow from the input to the loss.
#include "owt/parallel/network.h"

#include <algorithm>
#include <map>
#include <set>

#include "owt/nn/registry.h"

namespace owt {
namespace {

// PyTorch's naming: a layer's additive offset (conv, linear, batchnorm's beta) is `<layer>.bias`.
bool is_bias(const Param& p) {
  const std::string suffix = ".bias";
  return p.name.size() > suffix.size() &&
         p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string layer_what(const YAML::Node& node, size_t index) {
  if (node.IsMap() && node["name"] && node["name"].IsScalar())
    return cat("layer '", node["name"].Scalar(), "'");
  return cat("layer ", index + 1);
}

// Runs layer.setup_inputs, turning shapes the layer cannot take into an error at its line.
Shape setup_at(Layer& layer, const std::vector<Shape>& in, const LayerPlacement& place,
               const std::string& where) {
  try {
    return layer.setup_inputs(in, place);
  } catch (const Error& e) {
    throw Error(cat(where, ": ", e.what()));
  }
}

}  // namespace

Network::Network(const NetworkSpec& spec, int rank, int workers, ParallelMode mode)
    : rank_(rank), workers_(workers) {
  const std::vector<LayerKeys> keys = build_layers(spec, mode);
  connect_layers(keys);
  const Plan plan = make_plan(describe_for_plan(spec, keys), mode);
  transition_ = plan.transition;
  check_model_parallel_chain(spec, keys);
  place_layers(spec, plan, keys);
}

std::vector<Network::LayerKeys> Network::build_layers(const NetworkSpec& spec, ParallelMode mode) {
  std::vector<LayerKeys> keys;
  std::set<std::string> names;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    ConfigMap lc(spec.layers[i], spec.file, layer_what(spec.layers[i], i));
    std::unique_ptr<Layer> layer = make_layer(lc);
    LayerKeys k;
    // `parallel.default` stands in for the key on the layers that can be model-parallel.
    k.parallel = lc.get_enum<LayerParallel>(
        "parallel", {{"data", LayerParallel::Data}, {"model", LayerParallel::Model}, {"auto", LayerParallel::Auto}},
        layer->supports_model_parallel() ? spec.parallel.default_layer : LayerParallel::Default);
    if (k.parallel == LayerParallel::Auto && !layer->supports_model_parallel())
      lc.fail("parallel", cat("layer type '", layer->type(), "' runs data-parallel only; auto is for linear layers"));
    if (k.parallel == LayerParallel::Auto && workers_ > 1 && mode == ParallelMode::Owt)
      throw Error(cat(lc.where("parallel"), ": layer '", layer->name(), "': parallel: auto was not "
                      "resolved for ", workers_, " workers (auto_parallel.h: resolve_auto_parallel)"));
    k.split = lc.get_enum<LinearSplit>(
        "split", {{"auto", LinearSplit::Auto}, {"output", LinearSplit::Output}, {"input", LinearSplit::Input}},
        LinearSplit::Auto);
    k.lr_mult = lc.get_float("lr_mult", 1.0);
    if (k.lr_mult < 0) lc.fail("lr_mult", "must be zero or positive");
    k.wd_mult = lc.get_float("wd_mult", 1.0);
    if (k.wd_mult < 0) lc.fail("wd_mult", "must be zero or positive");
    k.bias_wd_mult = lc.get_float("bias_wd_mult", k.wd_mult);
    if (k.bias_wd_mult < 0) lc.fail("bias_wd_mult", "must be zero or positive");
    k.freeze = lc.get_bool("freeze", false);
    k.where = lc.where("parallel");
    k.inputs_where = lc.where("inputs");
    std::vector<std::string>& input_names = k.inputs;
    if (lc.has("inputs")) {
      for (const YAML::Node& n : lc.get_sequence("inputs")) {
        if (!n.IsScalar() || n.Scalar().empty())
          lc.fail("inputs", "expected a list of layer names, e.g. inputs: [bn2, relu1]");
        input_names.push_back(n.Scalar());
      }
      if (input_names.empty()) lc.fail("inputs", "names no layer");
      if (input_names.size() > layer->max_inputs())
        lc.fail("inputs", cat("a ", layer->type(), " layer takes ",
                              layer->max_inputs() == 1 ? "one input" : "fewer inputs", ", not ",
                              input_names.size()));
    }
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

void Network::connect_layers(const std::vector<LayerKeys>& keys) {
  std::map<std::string, size_t> index;
  inputs_.assign(size(), {});
  consumers_.assign(size(), 0);
  for (size_t i = 0; i < size(); ++i) {
    const std::string what = cat("layer '", layers_[i]->name(), "'");
    if (keys[i].inputs.empty()) {
      inputs_[i] = {i == 0 ? kNetworkInput : i - 1};
    } else {
      if (layers_[i]->as_loss())
        throw Error(cat(keys[i].inputs_where, ": ", what, ": the loss takes the layer before it; "
                        "remove inputs"));
      for (const std::string& name : keys[i].inputs) {
        auto it = index.find(name);
        if (it == index.end()) {
          bool later = false;
          for (size_t j = i; j < size(); ++j) later = later || layers_[j]->name() == name;
          throw Error(cat(keys[i].inputs_where, ": ", what, ": inputs: ",
                          later ? cat("'", name, "' is not an earlier layer (a layer's inputs come "
                                      "before it in the file, so the graph has no cycles)")
                                : cat("no layer is named '", name, "'")));
        }
        if (std::find(inputs_[i].begin(), inputs_[i].end(), it->second) != inputs_[i].end())
          throw Error(cat(keys[i].inputs_where, ": ", what, ": inputs: '", name, "' is named twice"));
        inputs_[i].push_back(it->second);
      }
    }
    for (size_t p : inputs_[i])
      if (p != kNetworkInput) ++consumers_[p];
    index[layers_[i]->name()] = i;
  }
  for (size_t i = 0; i + 1 < size(); ++i)
    if (consumers_[i] == 0)
      throw Error(cat(keys[i].where, ": layer '", layers_[i]->name(), "': its output is used by no "
                      "layer (name it in a later layer's inputs, or remove it)"));
}

// The model-parallel stage sees every row of the global batch and runs after the transition
// gathered them, so it must be a chain from the transition on, fed by the layer just before it;
// a residual branch around a model-parallel layer would need rows from both stages at once.
void Network::check_model_parallel_chain(const NetworkSpec& spec,
                                         const std::vector<LayerKeys>& keys) const {
  if (transition_ + 1 >= size()) return;
  const std::string first = layers_[transition_]->name();
  for (size_t i = transition_; i < size(); ++i) {
    if (layers_[i]->mixes_rows() && spec.parallel.transition == Transition::Pipelined)
      throw Error(cat(keys[i].inputs_where, ": layer '", layers_[i]->name(), "': a ",
                      layers_[i]->type(), " layer after the model-parallel layer '", first,
                      "' needs the whole global batch at once, but the pipelined transition runs "
                      "that stage one worker's rows at a time: use transition: allgather, or "
                      "place the layer before '", first, "'"));
    const bool chained = inputs_[i].size() == 1 && inputs_[i][0] == (i == 0 ? kNetworkInput : i - 1);
    if (!chained)
      throw Error(cat(keys[i].inputs_where, ": layer '", layers_[i]->name(), "': ",
                      i == transition_ ? "the first model-parallel layer" : "a layer after the model-parallel layer '" + first + "'",
                      " must take exactly the previous layer's output: model-parallel layers cannot sit "
                      "inside a residual branch (set parallel: data on '", first, "', or end the branch before it)"));
    if (i > transition_ && consumers_[i - 1] != 1)
      throw Error(cat(keys[i - 1].where, ": layer '", layers_[i - 1]->name(), "': its output feeds more "
                      "than the next layer, inside the model-parallel stage that starts at '", first,
                      "' (model-parallel layers cannot sit inside a residual branch)"));
  }
  if (transition_ > 0 && consumers_[transition_ - 1] != 1)
    throw Error(cat(keys[transition_ - 1].where, ": layer '", layers_[transition_ - 1]->name(),
                    "': feeds the model-parallel layer '", first, "' and other layers; the "
                    "transition takes one layer's output"));
}

std::vector<Shape> Network::input_shapes(size_t i, const Shape& input,
                                         const std::vector<Shape>& outputs) const {
  std::vector<Shape> shapes;
  for (size_t p : inputs_[i]) shapes.push_back(p == kNetworkInput ? input : outputs[p]);
  return shapes;
}

std::vector<PlanLayer> Network::describe_for_plan(const NetworkSpec& spec,
                                                  const std::vector<LayerKeys>& keys) {
  std::vector<PlanLayer> out(size());
  std::vector<Shape> outputs(size());
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
    const std::vector<Shape> in = input_shapes(i, spec.input, outputs);
    pl.in_width = in[0].numel();
    outputs[i] = setup_at(layer, in, LayerPlacement{}, keys[i].inputs_where);
    pl.out_width = outputs[i].numel();
  }
  return out;
}

void Network::place_layers(const NetworkSpec& spec, const Plan& plan,
                           const std::vector<LayerKeys>& keys) {
  for (size_t i = 0; i < size(); ++i) {
    Layer& layer = *layers_[i];
    // The input's placement is its producer's output placement (all of a layer's producers
    // are in the data-parallel stage, or it is the chain after the transition); from the
    // transition on every worker sees every row of the global batch.
    const size_t from = inputs_[i][0];
    Placement input = from == kNetworkInput ? Placement::rows() : layers_[from]->output_placement();
    if (has_model_parallel_stage() && i == transition_) input = Placement::replicate();
    LayerPlacement place;
    place.rank = rank_;
    place.workers = workers_;
    place.model_parallel = plan.model_parallel[i];
    place.gather_output = plan.gather_output[i];
    place.input = input;
    const std::vector<Shape> in = input_shapes(i, spec.input, out_shapes_);
    in_shapes_.push_back(in[0]);
    out_shapes_.push_back(setup_at(layer, in, place, keys[i].inputs_where));
    for (Param* p : layer.params()) {
      // A replicated param's gradient is Partial where the layer saw only this worker's rows
      // (summed over workers in buckets); in the model-parallel stage it is complete.
      p->grad_placement = p->sharded() ? p->placement
                          : place.input.is_shard(0) ? Placement::partial() : Placement::replicate();
      p->lr_mult = static_cast<float>(keys[i].lr_mult);
      p->wd_mult = static_cast<float>(is_bias(*p) ? keys[i].bias_wd_mult : keys[i].wd_mult);
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

std::vector<Param*> Network::buffers() {
  std::vector<Param*> out;
  for (auto& l : layers_)
    for (Param* p : l->buffers()) out.push_back(p);
  return out;
}

}  // namespace owt
