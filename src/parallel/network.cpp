// Network construction: each layer's YAML goes to its factory; the generic keys (parallel,
// split, lr_mult, wd_mult, freeze) are read here; the plan places the layers; shapes are chained.
#include "owt/parallel/network.h"

#include <set>

#include "owt/core/config_map.h"
#include "owt/nn/registry.h"

namespace owt {
namespace {

struct GenericKeys {
  std::string parallel;  // "", "data" or "model"
  std::string split;     // model-parallel linear: "auto", "output" (column) or "input" (row)
  double lr_mult = 1, wd_mult = 1;
  bool freeze = false;
};

GenericKeys read_generic_keys(ConfigMap& cfg) {
  GenericKeys g;
  g.parallel = cfg.get_choice("parallel", {"", "data", "model"}, "");
  g.split = cfg.get_choice("split", {"auto", "output", "input"}, "auto");
  g.lr_mult = cfg.get_float("lr_mult", 1.0);
  if (g.lr_mult < 0) cfg.fail("lr_mult", "must be zero or positive");
  g.wd_mult = cfg.get_float("wd_mult", 1.0);
  if (g.wd_mult < 0) cfg.fail("wd_mult", "must be zero or positive");
  g.freeze = cfg.get_bool("freeze", false);
  return g;
}

std::string layer_what(const YAML::Node& node, size_t index) {
  if (node.IsMap() && node["name"] && node["name"].IsScalar())
    return cat("layer '", node["name"].Scalar(), "'");
  return cat("layer ", index + 1);
}

}  // namespace

Network::Network(const ModelConfig& cfg, int rank, int workers, ParallelMode mode)
    : rank_(rank), workers_(workers) {
  std::vector<GenericKeys> generic;
  std::vector<std::string> where;
  std::set<std::string> names;
  for (size_t i = 0; i < cfg.layers.size(); ++i) {
    ConfigMap lc(cfg.layers[i], cfg.file, layer_what(cfg.layers[i], i));
    auto layer = make_layer(lc);
    generic.push_back(read_generic_keys(lc));
    lc.check_all_used();
    if (!names.insert(layer->name()).second)
      throw Error(cat(lc.where("name"), ": ", lc.what(), ": the name is used by an earlier layer"));
    bool is_loss = layer->as_loss() != nullptr;
    if (is_loss != (i + 1 == cfg.layers.size()))
      throw Error(cat(lc.where("type"), ": ", lc.what(),
                      is_loss ? ": the loss must be the last layer"
                              : ": the last layer must be a loss (softmax_cross_entropy)"));
    if (generic.back().parallel == "model" && !layer->supports_model_parallel())
      throw Error(cat(lc.where("parallel"), ": ", lc.what(), ": a ", layer->type(),
                      " layer cannot be model-parallel (only linear layers can)"));
    if (lc.has("split") && !layer->supports_model_parallel())
      throw Error(cat(lc.where("split"), ": ", lc.what(), ": only model-parallel linear layers "
                      "have a split"));
    where.push_back(lc.where("parallel"));
    layers_.push_back(std::move(layer));
  }

  // Every layer's unsharded width, from a one-worker shape pass; then the plan.
  std::vector<PlanLayer> plan_layers(size());
  {
    Shape probe = cfg.input;
    for (size_t i = 0; i < size(); ++i) {
      PlanLayer& pl = plan_layers[i];
      pl.name = layers_[i]->name();
      pl.where = where[i];
      pl.parallel = generic[i].parallel;
      pl.split = generic[i].split;
      pl.supports_model_parallel = layers_[i]->supports_model_parallel();
      pl.preserves_feature_shard = layers_[i]->preserves_feature_shard();
      pl.is_loss = layers_[i]->as_loss() != nullptr;
      pl.has_params = !layers_[i]->params().empty();
      pl.in_width = probe.numel();
      try {  // a shape the layer cannot take is a model-file error: say where the layer is
        probe = layers_[i]->setup(probe, LayerPlacement{});
      } catch (const Error& e) {
        throw Error(cat(where[i], ": ", e.what()));
      }
      pl.out_width = probe.numel();
    }
  }
  const Plan plan = make_plan(plan_layers, mode);
  transition_ = plan.transition;

  // Placements and the real shapes. Replicated params of layers in the model-parallel stage
  // see the whole global batch on every worker: their gradients are already complete.
  placements_.resize(size());
  Shape shape = cfg.input;
  bool input_sharded = false;
  int64_t col0 = 0, cols_total = 0;
  for (size_t i = 0; i < size(); ++i) {
    LayerPlacement& p = placements_[i];
    p.rank = rank;
    p.workers = workers;
    p.parallel = plan.model[i] ? Parallel::Model : Parallel::Data;
    p.input_sharded = input_sharded;
    p.in_col0 = col0;
    p.in_cols_total = cols_total;
    p.gather_output = !plan.keep_shard[i];
    in_shapes_.push_back(shape);
    try {
      shape = layers_[i]->setup(shape, p);
    } catch (const Error& e) {
      throw Error(cat(where[i], ": ", e.what()));
    }
    out_shapes_.push_back(shape);
    if (!layers_[i]->preserves_feature_shard())
      input_sharded = layers_[i]->output_shard(&col0, &cols_total);
    if (has_model_parallel_stage() && i >= transition_)
      for (Param* param : layers_[i]->params())
        if (param->layout == Layout::Replicated) param->grad_needs_sum = false;
  }
  const LayerPlacement& at_loss = placements_.back();
  int64_t logits = at_loss.input_sharded ? at_loss.in_cols_total : in_shapes_.back().numel();
  if (logits != cfg.classes)
    throw Error(cat(cfg.file, ": the last layer before the loss gives ", logits,
                    " outputs but the model has classes: ", cfg.classes));
  for (size_t i = 0; i < size(); ++i)
    for (Param* p : layers_[i]->params()) {
      p->lr_mult = static_cast<float>(generic[i].lr_mult);
      p->wd_mult = static_cast<float>(generic[i].wd_mult);
      p->frozen = generic[i].freeze;
    }
}

std::vector<Param*> Network::params() {
  std::vector<Param*> out;
  for (auto& l : layers_)
    for (Param* p : l->params()) out.push_back(p);
  return out;
}

}  // namespace owt
