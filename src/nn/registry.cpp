// The layer registry, built in one explicit function (no static registration a linker could
// drop), and make_layer, which reads `name` and `type` and hands the rest to the factory.
#include "owt/nn/registry.h"

#include "layer_factories.h"
#include "owt/core/error.h"

namespace owt {

const std::map<std::string, LayerFactory>& layer_registry() {
  static const std::map<std::string, LayerFactory> table = {
      {"conv", make_conv_layer},
      {"maxpool", make_maxpool_layer},
      {"avgpool", make_avgpool_layer},
      {"lrn", make_lrn_layer},
      {"relu", make_relu_layer},
      {"dropout", make_dropout_layer},
      {"flatten", make_flatten_layer},
      {"linear", make_linear_layer},
      {"softmax_cross_entropy", make_softmax_xent_layer},
      {"batchnorm", make_batchnorm_layer},
      {"global_avgpool", make_global_avgpool_layer},
      {"add", make_add_layer},
  };
  return table;
}

std::unique_ptr<Layer> make_layer(ConfigMap& cfg) {
  std::string type = cfg.get_string("type");
  const auto& table = layer_registry();
  auto it = table.find(type);
  if (it == table.end()) {
    std::string list;
    for (const auto& kv : table) list += (list.empty() ? "" : ", ") + kv.first;
    cfg.fail("type", cat("unknown layer type '", type, "' (known types: ", list, ")"));
  }
  return it->second(cfg);
}

}  // namespace owt
