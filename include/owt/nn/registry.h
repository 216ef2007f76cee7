// The layer registry: name -> factory, built in one explicit function (no static initialisers).
// Each factory parses its own YAML fields through ConfigMap and rejects unknown ones.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "owt/core/config_map.h"
#include "owt/nn/layer.h"

namespace owt {

using LayerFactory = std::function<std::unique_ptr<Layer>(ConfigMap& cfg)>;

// All layer types of owt, keyed by the `type:` of the model file.
const std::map<std::string, LayerFactory>& layer_registry();

// Builds a layer from its mapping (reads `name`, `type` and the type's own fields).
std::unique_ptr<Layer> make_layer(ConfigMap& cfg);

}  // namespace owt
