// open_split (a reader of files, or the generated set of `data.format: synthetic`) and the
// label-subset view behind `data.labels` (fine-tuning on 5 of the 10 Fashion-MNIST classes):
// an index map over the base set, labels renumbered; `data.class_names` over the set's names.
#include "owt/train/data_split.h"

#include <map>

#include "owt/data/synthetic_dataset.h"

namespace owt {
namespace {

class LabelSubset : public Dataset {
 public:
  LabelSubset(std::unique_ptr<Dataset> base, const std::vector<int32_t>& labels,
              const std::string& what)
      : base_(std::move(base)) {
    std::map<int32_t, int32_t> renumber;
    for (size_t i = 0; i < labels.size(); ++i) renumber[labels[i]] = static_cast<int32_t>(i);
    std::vector<std::string> names = base_->class_names();
    for (int32_t l : labels) {
      if (l >= base_->classes())
        throw Error(cat(what, ": data.labels names label ", l, " but the set's labels are 0..",
                        base_->classes() - 1));
      names_.push_back(names[l]);
    }
    for (int64_t i = 0; i < base_->size(); ++i) {
      auto it = renumber.find(base_->label(i));
      if (it == renumber.end()) continue;
      index_.push_back(i);
      label_.push_back(it->second);
    }
    if (index_.empty()) throw Error(cat(what, ": no example has one of the labels in data.labels"));
  }
  int64_t size() const override { return static_cast<int64_t>(index_.size()); }
  Shape example_shape() const override { return base_->example_shape(); }
  int classes() const override { return static_cast<int>(names_.size()); }
  std::vector<std::string> class_names() const override { return names_; }
  int32_t label(int64_t i) const override { return label_[i]; }
  void read(int64_t i, float* out) const override { base_->read(index_[i], out); }
  void read_image(int64_t i, Image& out) const override { base_->read_image(index_[i], out); }
  std::string source(int64_t i) const override { return base_->source(index_[i]); }
  int64_t skipped_at_open() const override { return base_->skipped_at_open(); }

 private:
  std::unique_ptr<Dataset> base_;
  std::vector<int64_t> index_;   // subset position -> base example
  std::vector<int32_t> label_;   // renumbered labels
  std::vector<std::string> names_;
};

// The model file's data.class_names over a set: the same examples, the model's class names.
class NamedClasses : public Dataset {
 public:
  NamedClasses(std::unique_ptr<Dataset> base, std::vector<std::string> names)
      : base_(std::move(base)), names_(std::move(names)) {}
  int64_t size() const override { return base_->size(); }
  Shape example_shape() const override { return base_->example_shape(); }
  int classes() const override { return base_->classes(); }
  std::vector<std::string> class_names() const override { return names_; }
  int32_t label(int64_t i) const override { return base_->label(i); }
  void read(int64_t i, float* out) const override { base_->read(i, out); }
  void read_image(int64_t i, Image& out) const override { base_->read_image(i, out); }
  std::string source(int64_t i) const override { return base_->source(i); }
  int64_t skipped_at_open() const override { return base_->skipped_at_open(); }

 private:
  std::unique_ptr<Dataset> base_;
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Dataset> select_labels(std::unique_ptr<Dataset> base,
                                       const std::vector<int32_t>& labels, const std::string& what) {
  return std::make_unique<LabelSubset>(std::move(base), labels, what);
}

std::string data_name(const ModelConfig& cfg) {
  return cfg.data.path.empty() ? cat(cfg.file, " (", cfg.data.format, " data)") : cfg.data.path;
}

void check_split(const Dataset& data, const ModelConfig& cfg, const Transform& tf,
                 const std::string& split) {
  const std::string where = data_name(cfg);
  if (tf.output_shape() != cfg.net.input)
    throw Error(cat(where, ": ", split, " images are ", data.example_shape().str(),
                    tf.output_shape() != data.example_shape()
                        ? cat(" (", tf.output_shape().str(), " after augmentation)") : "",
                    " but ", cfg.file, " declares input ", cfg.net.input.str()));
  if (data.classes() > cfg.net.classes)
    throw Error(cat(where, ": ", split, " labels go up to ", data.classes() - 1, " but ",
                    cfg.file, " declares classes: ", cfg.net.classes));
  if (data.size() == 0) throw Error(cat(where, ": the ", split, " set is empty"));
}

namespace {

// The model file's synthetic set: its shape, classes and seed (after --seed) with the data keys.
std::unique_ptr<Dataset> open_synthetic_split(const ModelConfig& cfg, const std::string& split) {
  if (!cfg.data.path.empty())  // only --data can set it: the parser refuses data.path
    throw Error(cat(cfg.file, ": data.format is synthetic, its examples are generated: there is "
                    "nothing to read from ", cfg.data.path, " (drop --data)"));
  SyntheticSpec s;
  s.shape = cfg.net.input;
  s.classes = cfg.net.classes;
  s.train_examples = cfg.data.train_examples;
  s.test_examples = cfg.data.test_examples;
  s.noise = static_cast<float>(cfg.data.noise);
  s.shift = cfg.data.shift;
  s.frequency = cfg.data.class_frequency == "zipf" ? ClassFrequency::Zipf : ClassFrequency::Uniform;
  s.seed = cfg.seed;
  return open_synthetic_dataset(s, split);
}

}  // namespace

std::unique_ptr<Dataset> open_split(const ModelConfig& cfg, const std::string& split) {
  std::unique_ptr<Dataset> data;
  if (cfg.data.format == "synthetic") {
    data = open_synthetic_split(cfg, split);
  } else {
    if (cfg.data.path.empty())
      throw Error(cat(cfg.file, ": no data set: give data.path in the model file or --data DIR"));
    data = open_dataset(cfg.data.format, cfg.data.path, split, DatasetOptions{cfg.data.strict});
  }
  if (!cfg.data.labels.empty())
    data = select_labels(std::move(data), cfg.data.labels, cat(cfg.data.path, " (", split, ")"));
  if (cfg.data.class_names.empty()) return data;
  // One name per class of the model (the parser checked the count), so every label of the set
  // that check_split accepts has a name.
  return std::make_unique<NamedClasses>(std::move(data), cfg.data.class_names);
}

}  // namespace owt
