// Parses and checks a model file: every key known, every value typed, with file:line errors.
// The layer list is checked here only for shape (a list of mappings with name and type).
#include "owt/train/model_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "owt/core/config_map.h"
#include "owt/core/error.h"

namespace owt {
namespace {

TransformSpec parse_transform(ConfigMap& aug, const std::vector<double>& mean,
                              const std::vector<double>& std, bool train) {
  TransformSpec t;
  t.mean.assign(mean.begin(), mean.end());
  t.std.assign(std.begin(), std.end());
  t.resize = static_cast<int>(aug.get_int("resize", 0));
  if (t.resize < 0) aug.fail("resize", "must be zero (no resize) or positive");
  t.crop = static_cast<int>(aug.get_int("crop", 0));
  if (t.crop < 0) aug.fail("crop", "must be zero (no crop) or positive");
  t.pad = train ? static_cast<int>(aug.get_int("pad", 0)) : 0;
  if (t.pad < 0) aug.fail("pad", "must be zero or positive");
  t.random_crop = train && (t.crop > 0 || t.pad > 0);
  t.flip = train && aug.get_bool("flip", false);
  t.lighting = static_cast<float>(aug.get_float("lighting", 0.0));
  if (t.lighting < 0) aug.fail("lighting", "must be zero (off) or positive (0.1 in AlexNet)");
  t.test_views = static_cast<int>(aug.get_int("test_views", 1));
  if (t.test_views != 1 && t.test_views != 10) aug.fail("test_views", "must be 1 or 10");
  return t;
}

void parse_data(ConfigMap& root, ModelConfig& m) {
  ConfigMap data = root.get_map("data");
  m.data.format = data.get_choice("format", {"idx", "cifar10", "cifar100", "folder", "packed"}, "idx");
  m.data.path = data.get_string("path", "");
  std::vector<double> mean = data.get_float_list("mean", {}), std = data.get_float_list("std", {});
  for (double s : std)
    if (s <= 0) data.fail("std", "every entry must be positive");
  size_t c = static_cast<size_t>(m.net.input[0]);
  if (!mean.empty() && mean.size() != 1 && mean.size() != c)
    data.fail("mean", cat("expected 1 or ", c, " values (one per channel), got ", mean.size()));
  if (!std.empty() && std.size() != 1 && std.size() != c)
    data.fail("std", cat("expected 1 or ", c, " values (one per channel), got ", std.size()));
  if (data.has("labels")) {
    std::set<int64_t> seen;
    for (int64_t l : data.get_int_list("labels")) {
      if (l < 0 || !seen.insert(l).second)
        data.fail("labels", cat("expected distinct labels >= 0, found ", l, " twice or negative"));
      m.data.labels.push_back(static_cast<int32_t>(l));
    }
    if (m.data.labels.empty()) data.fail("labels", "needs at least one label");
  }
  m.data.threads = static_cast<int>(data.get_int("threads", 0));
  if (m.data.threads < 0) data.fail("threads", "must be zero (the --threads value) or positive");
  m.data.prefetch = static_cast<int>(data.get_int("prefetch", 2));
  if (m.data.prefetch < 0) data.fail("prefetch", "must be zero (no prefetching) or positive");
  m.data.strict = data.get_bool("strict", false);
  if (data.has("augment")) {
    ConfigMap aug = data.get_map("augment");
    m.data.train = parse_transform(aug, mean, std, true);
    m.data.eval = m.data.train;
    m.data.eval.pad = 0;
    m.data.eval.random_crop = false;
    m.data.eval.flip = false;
    m.data.eval.lighting = 0;
    if (m.data.train.lighting > 0 && c != 3)
      aug.fail("lighting", cat("PCA lighting needs RGB input; input has ", c, " channels"));
    aug.check_all_used();
  } else {
    m.data.train.mean = m.data.eval.mean = std::vector<float>(mean.begin(), mean.end());
    m.data.train.std = m.data.eval.std = std::vector<float>(std.begin(), std.end());
  }
  data.check_all_used();
}

void parse_solver(ConfigMap& root, SolverConfig& s) {
  ConfigMap cfg = root.get_map("solver");
  s.type = cfg.get_choice("type", {"sgd"}, "sgd");
  s.lr = cfg.get_float("lr");
  if (s.lr <= 0) cfg.fail("lr", "must be positive");
  s.momentum = cfg.get_float("momentum", 0.9);
  if (s.momentum < 0 || s.momentum >= 1) cfg.fail("momentum", "must be in [0, 1)");
  s.weight_decay = cfg.get_float("weight_decay", 0.0);
  if (s.weight_decay < 0) cfg.fail("weight_decay", "must be zero or positive");
  s.batch = cfg.get_int("batch");
  if (s.batch <= 0) cfg.fail("batch", "must be a positive integer");
  s.epochs = cfg.get_int("epochs");
  if (s.epochs <= 0) cfg.fail("epochs", "must be a positive integer");
  if (cfg.has("schedule")) {
    ConfigMap sch = cfg.get_map("schedule");
    ScheduleConfig& c = s.schedule;
    c.type = sch.get_choice("type", {"constant", "step", "cosine"}, "constant");
    c.warmup_epochs = sch.get_float("warmup_epochs", 0.0);
    if (c.warmup_epochs < 0) sch.fail("warmup_epochs", "must be zero or positive");
    if (c.type == "step") {
      c.milestones = sch.get_float_list("milestones", {});
      if (c.milestones.empty()) sch.fail("milestones", "a step schedule needs a list of epochs");
      c.gamma = sch.get_float("gamma", 0.1);
      if (c.gamma <= 0) sch.fail("gamma", "must be positive");
    }
    if (c.type == "cosine") c.min_lr = sch.get_float("min_lr", 0.0);
    sch.check_all_used();
  }
  cfg.check_all_used();
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& name) {
  YAML::Node doc = load_yaml_string(text, name);
  ModelConfig m;
  m.file = name;
  m.text = text;
  ConfigMap root(doc, name, "model");
  m.name = root.get_string("name");
  std::vector<int64_t> input = root.get_int_list("input");
  if (input.size() != 3) root.fail("input", cat("expected [C, H, W], got ", input.size(), " values"));
  for (int64_t d : input)
    if (d <= 0) root.fail("input", "every dimension must be positive");
  m.net.file = name;
  m.net.input = Shape(input);
  m.net.classes = root.get_int("classes");
  if (m.net.classes < 2) root.fail("classes", "must be at least 2");
  m.seed = static_cast<uint64_t>(root.get_int("seed", 1));
  parse_data(root, m);
  m.net.layers = root.get_sequence("layers");
  if (m.net.layers.empty()) root.fail("layers", "needs at least one layer");
  if (root.has("parallel")) {
    ConfigMap par = root.get_map("parallel");
    m.net.parallel = parse_parallel_spec(par);
  }
  parse_solver(root, m.solver);
  m.precision = root.get_choice("precision", {"tf32", "fp32-strict", "bf16"}, "tf32");
  root.check_all_used();
  return m;
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(cat(path, ": cannot open model file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_model_config(ss.str(), path);
}

}  // namespace owt
