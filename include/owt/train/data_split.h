// Opening a split of the model file's data set as the trainer, `owt eval` and `owt predict` see
// it: the reader for data.format, restricted to data.labels (renumbered) when given.
#pragma once
#include <memory>
#include <string>

#include "owt/data/dataset.h"
#include "owt/data/transform.h"
#include "owt/train/model_config.h"

namespace owt {

// `split` is "train" or "test". Errors name the data path. With data.class_names the set's
// class_names() are the model file's names.
std::unique_ptr<Dataset> open_split(const ModelConfig& cfg, const std::string& split);

// Checks a split against the model: the transform's output is the model's input, the labels
// fit its classes, and the split is not empty. Errors name the data path and the model file.
void check_split(const Dataset& data, const ModelConfig& cfg, const Transform& tf,
                 const std::string& split);

// The data set in messages: its path, or the model file for a synthetic set.
std::string data_name(const ModelConfig& cfg);

// The examples of `base` whose label is in `labels`, relabelled by position in `labels`
// (class names follow). `what` names the set in errors.
std::unique_ptr<Dataset> select_labels(std::unique_ptr<Dataset> base,
                                       const std::vector<int32_t>& labels, const std::string& what);

}  // namespace owt
