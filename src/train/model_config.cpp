// Parses and checks a model file: every key known, every value typed and bounded (core/limits.h),
// every combination of keys that would do nothing refused, all with file:line errors. The
// layers are built once as a one-worker Network (shapes only, nothing allocated) so that a file
// asking for an absurd network is refused here, before anything is allocated; the placement of
// owt's plan is checked later, when the model is built for a --parallel mode.
#include "owt/train/model_config.h"

#include <algorithm>
#include <set>

#include "owt/core/config_map.h"
#include "owt/core/error.h"
#include "owt/core/limits.h"
#include "owt/parallel/network.h"

namespace owt {
namespace {

// Formats whose examples all have one size (known only once the files are read for idx).
bool fixed_size_format(const std::string& format) { return format == "idx" || format.rfind("cifar", 0) == 0; }

// A name shown in messages and written into files (checkpoint metadata): one line of text.
bool printable_name(const std::string& s) {
  if (s.empty() || s.size() > limits::kNameBytes) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return false;
  return true;
}

// The keys of `data.format: synthetic` (data/synthetic_dataset.h): both example counts are
// required; for any other format each of them is refused, as it would do nothing.
void parse_synthetic(ConfigMap& data, DataConfig& d) {
  const char* keys[] = {"train_examples", "test_examples", "noise", "shift", "class_frequency"};
  if (d.format != "synthetic") {
    for (const char* key : keys)
      if (data.has(key))
        data.fail(key, cat("only synthetic data is generated; a ", d.format,
                           " set's examples come from its files, so ", key, " does nothing"));
    return;
  }
  auto count = [&](const char* key, const char* split) {
    if (!data.has(key))
      data.fail(key, cat("synthetic data needs the number of ", split, " examples (e.g. ", key, ": 10000)"));
    const int64_t n = data.get_int(key);
    if (n <= 0) data.fail(key, cat("must be a positive integer up to ", limits::kConfigInt));
    return n;
  };
  d.train_examples = count("train_examples", "training");
  d.test_examples = count("test_examples", "test");
  d.noise = data.get_float("noise", 0.3);
  if (d.noise < 0) data.fail("noise", "the noise's standard deviation must be zero or positive");
  d.shift = data.get_int("shift", 2);
  if (d.shift < 0 || d.shift > limits::kImageSide)
    data.fail("shift", cat("the largest shift must be zero (none) or up to ", limits::kImageSide, " pixels"));
  d.class_frequency = data.get_choice("class_frequency", {"uniform", "zipf"}, "uniform");
}

TransformSpec parse_transform(ConfigMap& aug, const std::vector<double>& mean,
                              const std::vector<double>& std, bool train) {
  TransformSpec t;
  t.mean.assign(mean.begin(), mean.end());
  t.std.assign(std.begin(), std.end());
  auto side = [&](const char* key, const char* zero) {
    const int64_t v = aug.get_int(key, 0);
    if (v < 0) aug.fail(key, cat("must be zero (", zero, ") or positive"));
    if (v > limits::kImageSide) aug.fail(key, cat(v, " is larger than images can be (", limits::kImageSide, ")"));
    return static_cast<int>(v);
  };
  t.resize = side("resize", "no resize");
  t.crop = side("crop", "no crop");
  t.pad = train ? side("pad", "no padding") : 0;
  t.random_crop = train && (t.crop > 0 || t.pad > 0);
  t.flip = train && aug.get_bool("flip", false);
  t.lighting = static_cast<float>(aug.get_float("lighting", 0.0));
  if (t.lighting < 0) aug.fail("lighting", "must be zero (off) or positive (0.1 in AlexNet)");
  t.test_views = static_cast<int>(aug.get_int("test_views", 1));
  if (t.test_views != 1 && t.test_views != 10) aug.fail("test_views", "must be 1 or 10");
  return t;
}

// The augment keys against the format and the model's input: every key must do something and
// the transform's output must be what the network takes.
void check_augment(ConfigMap& aug, const TransformSpec& t, const ModelConfig& m) {
  const int64_t c = m.net.input[0], h = m.net.input[1], w = m.net.input[2];
  if (t.lighting > 0 && c != 3)
    aug.fail("lighting", cat("PCA lighting needs RGB input; input has ", c, " channels"));
  if (t.test_views == 10 && t.crop == 0)
    aug.fail("test_views", "the 10 views are crops (corners and centre, mirrored): they need "
                           "augment.crop");
  if (t.crop > 0 && (h != t.crop || w != t.crop))
    aug.fail("crop", cat("crops are ", t.crop, "x", t.crop, " but the model's input is ",
                         m.net.input.str(), ": input must be [C, ", t.crop, ", ", t.crop, "]"));
  if (t.crop > 0 && t.resize > 0 && t.crop > t.resize + 2 * t.pad)
    aug.fail("crop", cat(t.crop, "x", t.crop, " crops do not fit images resized to a shorter side of ",
                         t.resize, t.pad ? cat(" and padded by ", t.pad) : std::string()));
  if (m.data.format == "cifar10" || m.data.format == "cifar100") {
    // CIFAR images are 32x32: what comes out without a crop is the (resized) 32x32 image.
    const int64_t side = t.crop ? t.crop : t.resize ? t.resize : 32;
    if (t.crop > 0 && t.resize == 0 && t.crop > 32 + 2 * t.pad)
      aug.fail("crop", cat(t.crop, "x", t.crop, " crops do not fit CIFAR's 32x32 images",
                           t.pad ? cat(" padded by ", t.pad) : std::string()));
    if (h != side || w != side)
      aug.fail(t.crop ? "crop" : "resize",
               cat("CIFAR images come out ", side, "x", side, " but the model's input is ",
                   m.net.input.str()));
  }
}

void parse_data(ConfigMap& root, ModelConfig& m) {
  ConfigMap data = root.get_map("data");
  m.data.format =
      data.get_choice("format", {"idx", "cifar10", "cifar100", "folder", "packed", "synthetic"}, "idx");
  const std::string& format = m.data.format;
  const bool synthetic = format == "synthetic";
  m.data.path = data.get_string("path", "");
  if (synthetic && data.has("path"))
    data.fail("path", "synthetic examples are generated, there are no files to read: remove data.path");
  parse_synthetic(data, m.data);
  const int64_t c = m.net.input[0], h = m.net.input[1], w = m.net.input[2];
  // (IDX sets are grey, but test fixtures use format idx as a stand-in for networks of any
  // channel count; a real IDX set of the wrong shape is refused when it is opened. Synthetic
  // examples take any shape from input.)
  if (format != "idx" && !synthetic && c != 3)
    root.fail("input", cat(format, " images are RGB (3 channels), but input has ", c,
                           " (data.format at ", data.where("format"), ")"));
  std::vector<double> mean = data.get_float_list("mean", {}), std = data.get_float_list("std", {});
  for (double s : std)
    if (s < 1e-6) data.fail("std", "every entry must be positive (at least 1e-6)");
  const size_t channels = static_cast<size_t>(c);
  if (!mean.empty() && mean.size() != 1 && mean.size() != channels)
    data.fail("mean", cat("expected 1 or ", channels, " values (one per channel), got ", mean.size()));
  if (!std.empty() && std.size() != 1 && std.size() != channels)
    data.fail("std", cat("expected 1 or ", channels, " values (one per channel), got ", std.size()));
  if (synthetic && data.has("labels"))
    data.fail("labels", "a synthetic set generates exactly the model's classes, so keeping "
                        "`classes` of them only renumbers them: remove data.labels (or change classes)");
  if (data.has("labels")) {
    std::set<int64_t> seen;
    for (int64_t l : data.get_int_list("labels")) {
      if (l < 0 || l >= limits::kClasses || !seen.insert(l).second)
        data.fail("labels", cat("expected distinct labels in 0..", limits::kClasses - 1, ", found ", l,
                                " twice or out of range"));
      m.data.labels.push_back(static_cast<int32_t>(l));
    }
    if (m.data.labels.empty()) data.fail("labels", "needs at least one label");
    if (static_cast<int64_t>(m.data.labels.size()) != m.net.classes)
      data.fail("labels", cat("keeps ", m.data.labels.size(), " labels, renumbered 0..",
                              m.data.labels.size() - 1, ", but the model has classes: ", m.net.classes,
                              " (each kept label is one class)"));
  }
  if (data.has("class_names")) {
    YAML::Node list = data.node()["class_names"];
    if (!list.IsSequence())
      data.fail("class_names", "expected a list of names, one per class");
    std::set<std::string> seen;
    for (const YAML::Node& n : list) {
      if (!n.IsScalar() || !printable_name(n.Scalar()))
        data.fail("class_names", cat("expected names of 1 to ", limits::kNameBytes,
                                     " characters on one line, found ",
                                     n.IsScalar() ? cat("'", n.Scalar(), "'") : std::string("a list or mapping")));
      if (!seen.insert(n.Scalar()).second)
        data.fail("class_names", cat("'", n.Scalar(), "' names two classes"));
      m.data.class_names.push_back(n.Scalar());
    }
    data.get_sequence("class_names");  // marks the key as read
    if (static_cast<int64_t>(m.data.class_names.size()) != m.net.classes)
      data.fail("class_names", cat(m.data.class_names.size(), " names for classes: ", m.net.classes,
                                   " (one name per class, in class order",
                                   m.data.labels.empty() ? "" : ", i.e. the order of data.labels", ")"));
  }
  const int64_t threads = data.get_int("threads", 0);
  if (threads < 0 || threads > limits::kThreads)
    data.fail("threads", cat("must be zero (the --threads value) or up to ", limits::kThreads));
  m.data.threads = static_cast<int>(threads);
  const int64_t prefetch = data.get_int("prefetch", 2);
  if (prefetch < 0 || prefetch > limits::kPrefetch)
    data.fail("prefetch", cat("must be zero (no prefetching) or up to ", limits::kPrefetch));
  m.data.prefetch = static_cast<int>(prefetch);
  m.data.strict = data.get_bool("strict", false);
  if (data.has("strict") && synthetic)
    data.fail("strict", "synthetic examples are generated, never unreadable, so strict does nothing");
  if (data.has("strict") && fixed_size_format(format))
    data.fail("strict", cat("only folder and packed sets skip unreadable images; a bad ", format,
                            " file is always an error"));
  if (data.has("augment")) {
    ConfigMap aug = data.get_map("augment");
    m.data.train = parse_transform(aug, mean, std, true);
    m.data.eval = m.data.train;
    m.data.eval.pad = 0;
    m.data.eval.random_crop = false;
    m.data.eval.flip = false;
    m.data.eval.lighting = 0;
    check_augment(aug, m.data.train, m);
    aug.check_all_used();
  } else {
    m.data.train.mean = m.data.eval.mean = std::vector<float>(mean.begin(), mean.end());
    m.data.train.std = m.data.eval.std = std::vector<float>(std.begin(), std.end());
    if (format == "cifar10" || format == "cifar100") {
      if (h != 32 || w != 32)
        root.fail("input", cat("CIFAR images are 32x32, but input is ", m.net.input.str(),
                               " (give data.augment.crop or resize to change the size)"));
    }
  }
  if ((format == "folder" || format == "packed") && m.data.train.crop == 0)
    data.fail(data.has("augment") ? "augment" : "format",
              cat(format, " sets hold images of different sizes: give data.augment.crop (e.g. "
                          "augment: {resize: 256, crop: 224})"));
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
  s.nesterov = cfg.get_bool("nesterov", false);
  if (s.nesterov && s.momentum == 0)
    cfg.fail("nesterov", "Nesterov momentum needs a momentum above 0 (momentum is 0)");
  s.batch = cfg.get_int("batch");
  if (s.batch <= 0 || s.batch > limits::kBatch)
    cfg.fail("batch", cat("must be a positive integer up to ", limits::kBatch));
  s.epochs = cfg.get_int("epochs");
  if (s.epochs <= 0 || s.epochs > limits::kEpochs)
    cfg.fail("epochs", cat("must be a positive integer up to ", limits::kEpochs));
  if (cfg.has("schedule")) {
    ConfigMap sch = cfg.get_map("schedule");
    ScheduleConfig& c = s.schedule;
    c.type = sch.get_choice("type", {"constant", "step", "cosine"}, "constant");
    c.warmup_epochs = sch.get_float("warmup_epochs", 0.0);
    if (c.warmup_epochs < 0) sch.fail("warmup_epochs", "must be zero or positive");
    for (const char* key : {"milestones", "gamma"})
      if (c.type != "step" && sch.has(key))
        sch.fail(key, cat("only a step schedule has ", key, " (type is ", c.type, ")"));
    if (c.type != "cosine" && sch.has("min_lr"))
      sch.fail("min_lr", cat("only a cosine schedule has a floor (type is ", c.type, ")"));
    if (c.type == "step") {
      c.milestones = sch.get_float_list("milestones", {});
      if (c.milestones.empty()) sch.fail("milestones", "a step schedule needs a list of epochs");
      for (size_t i = 0; i < c.milestones.size(); ++i)
        if (c.milestones[i] <= 0 || (i > 0 && c.milestones[i] <= c.milestones[i - 1]))
          sch.fail("milestones", "expected positive epochs in increasing order");
      c.gamma = sch.get_float("gamma", 0.1);
      if (c.gamma <= 0) sch.fail("gamma", "must be positive");
    }
    if (c.type == "cosine") {
      c.min_lr = sch.get_float("min_lr", 0.0);
      if (c.min_lr < 0) sch.fail("min_lr", "must be zero or positive");
      if (c.min_lr >= s.lr)
        sch.fail("min_lr", cat("the floor ", c.min_lr, " is not below the learning rate ", s.lr));
    }
    sch.check_all_used();
  }
  cfg.check_all_used();
}

// Whether layer i may be model-parallel in owt's plan: a layer type that can be (linear) and not
// `parallel: data`, by its own key or `parallel.default` (auto may choose model).
bool model_parallel(const ModelConfig& m, Network& net, size_t i) {
  const YAML::Node p = m.net.layers[i]["parallel"];
  const bool data = p ? p.IsScalar() && p.Scalar() == "data" : m.net.parallel.default_layer == LayerParallel::Data;
  return net.layer(i).supports_model_parallel() && !data;
}

// The keys every layer accepts (parallel/network.cpp reads them) against what the built layer
// is: a key that cannot change anything for this layer is refused at its line.
void check_layer_keys(const ModelConfig& m, Network& net) {
  for (size_t i = 0; i < net.size() && i < m.net.layers.size(); ++i) {
    Layer& layer = net.layer(i);
    ConfigMap lc(m.net.layers[i], m.file, cat("layer '", layer.name(), "'"));
    const bool frozen = lc.has("freeze") && lc.get_bool("freeze", false);
    for (const char* key : {"lr_mult", "wd_mult", "bias_wd_mult", "freeze"}) {
      if (!lc.has(key)) continue;
      if (layer.params().empty())
        lc.fail(key, cat("a ", layer.type(), " layer has no parameters, so ", key, " does nothing"));
      if (frozen && std::string(key) != "freeze")
        lc.fail(key, cat("the layer is frozen (freeze: true), so ", key, " does nothing"));
    }
    bool has_bias = false;
    for (Param* p : layer.params())
      has_bias = has_bias || p->name == layer.name() + ".bias";
    if (lc.has("bias_wd_mult") && !layer.params().empty() && !has_bias)
      lc.fail("bias_wd_mult", cat("the layer has no bias (", layer.name(), ".bias), so bias_wd_mult does nothing"));
    if (lc.has("split") && layer.supports_model_parallel() && !model_parallel(m, net, i))
      lc.fail("split", "only model-parallel linear layers are split; this one is data-parallel "
                       "(parallel: data)");
  }
}

// Builds the network once (shapes and param declarations only, the data-parallel plan, which
// every file has: owt's plan is checked when the model is built, as --parallel dp may be asked
// for) and bounds what it would allocate: parameters, and activations per example and per
// batch. Parameter and activation counts are the same under every plan.
void check_network(ConfigMap& root, const ModelConfig& m) {
  Network net(m.net, 0, 1, ParallelMode::DataOnly);  // its own errors name the layer's line
  int64_t params = 0, activations = 0;
  bool any_model_parallel = false;
  for (size_t i = 0; i < net.size(); ++i) try {
    any_model_parallel = any_model_parallel || model_parallel(m, net, i);
    // Each count is below 2^63 (Shape::numel checks) and is added only to a sum still within
    // its limit, so the sums cannot overflow either.
    for (Param* p : net.layer(i).params()) params += std::min(p->full_shape.numel(), limits::kParams + 1);
    activations += std::min(net.output_shape(i).numel(), limits::kActivations + 1);
    if (params > limits::kParams)
      root.fail("layers", cat("the network has more than ", limits::kParams, " parameters (at layer '",
                              net.layer(i).name(), "'); owt refuses networks that large"));
    if (activations > limits::kActivations)
      root.fail("layers", cat("one example's activations exceed ", limits::kActivations,
                              " elements (at layer '", net.layer(i).name(), "'); owt refuses networks that large"));
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(m.file + ":", 0) == 0) throw;  // already names the file
    root.fail("layers", cat("layer '", net.layer(i).name(), "': ", e.what()));  // a 64-bit overflow
  }
  if (m.has_solver && activations * m.solver.batch > limits::kBatchActivations)
    root.fail("layers", cat("a batch of ", m.solver.batch, " takes ", activations,
                            " activation elements per example, more than the ",
                            limits::kBatchActivations, " owt allows per batch"));
  check_layer_keys(m, net);
  if (root.has("parallel") && !any_model_parallel)
    root.fail("parallel", "no layer is model-parallel, so the transition (and fc_update) has "
                          "nothing to do: remove the parallel section or make a linear layer "
                          "parallel: model");
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& name, ModelParts parts) {
  YAML::Node doc = load_yaml_string(text, name);
  ModelConfig m;
  m.file = name;
  m.text = text;
  ConfigMap root(doc, name, "model");
  m.name = root.get_string("name");
  // The name becomes a path component (runs/<name>-<time>): one plain file name.
  if (!printable_name(m.name) || m.name[0] == '.' || m.name.find('/') != std::string::npos ||
      m.name.find('\\') != std::string::npos)
    root.fail("name", cat("'", m.name, "' must be a plain file name (no '/', not starting with '.', "
                          "1 to ", limits::kNameBytes, " printable characters): run directories are "
                          "runs/<name>-<time>"));
  std::vector<int64_t> input = root.get_int_list("input");
  if (input.size() != 3) root.fail("input", cat("expected [C, H, W], got ", input.size(), " values"));
  for (int64_t d : input)
    if (d <= 0 || d > limits::kInputSide)
      root.fail("input", cat("every dimension must be positive and at most ", limits::kInputSide));
  if (input[0] * input[1] * input[2] > limits::kInputElements)
    root.fail("input", cat("C x H x W is ", input[0] * input[1] * input[2], "; at most ",
                           limits::kInputElements, " elements"));
  m.net.file = name;
  m.net.input = Shape(input);
  m.net.classes = root.get_int("classes");
  if (m.net.classes < 2 || m.net.classes > limits::kClasses)
    root.fail("classes", cat("must be at least 2 and at most ", limits::kClasses));
  m.seed = root.get_u64("seed", 1);
  if (parts == ModelParts::All || root.has("data")) parse_data(root, m);
  m.net.layers = root.get_sequence("layers");
  if (m.net.layers.empty()) root.fail("layers", "needs at least one layer");
  if (root.has("parallel")) {
    ConfigMap par = root.get_map("parallel");
    m.net.parallel = parse_parallel_spec(par);
  }
  if (parts == ModelParts::All || root.has("solver")) {
    parse_solver(root, m.solver);
  } else {
    m.has_solver = false;
    m.solver.batch = 0;
  }
  m.precision = root.get_choice("precision", {"tf32", "fp32-strict", "bf16"}, "tf32");
  root.check_all_used();
  check_network(root, m);
  return m;
}

ModelConfig load_model_config(const std::string& path, ModelParts parts) {
  return parse_model_config(read_model_file(path), path, parts);
}

}  // namespace owt
