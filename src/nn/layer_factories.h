// Factories of the built-in layer types, one per file in src/nn/, collected by registry.cpp.
// Each parses its own fields from the layer's mapping.
#pragma once
#include <memory>

#include "owt/core/config_map.h"
#include "owt/nn/layer.h"

namespace owt {

std::unique_ptr<Layer> make_conv_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_maxpool_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_avgpool_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_lrn_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_relu_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_dropout_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_flatten_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_linear_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_softmax_xent_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_batchnorm_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_global_avgpool_layer(ConfigMap& cfg);
std::unique_ptr<Layer> make_add_layer(ConfigMap& cfg);

}  // namespace owt
