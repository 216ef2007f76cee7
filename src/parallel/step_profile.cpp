// load_step_profile: the bench JSON read as YAML (JSON is a subset) through ConfigMap, so every
// error names the file, line and field.
#include "owt/parallel/step_profile.h"

#include <algorithm>

#include "owt/core/config_map.h"
#include "owt/core/error.h"

namespace owt {

const StepProfile::Layer& StepProfile::of(const std::string& name) const {
  for (const Layer& l : layers)
    if (l.name == name) return l;
  throw Error(cat(file, ": no layer '", name, "' (was it measured on model '", model,
                  "'? measure with `owt bench MODEL --profile --json --workers 1`)"));
}

double StepProfile::other_seconds() const {
  double layer_sum = 0;
  for (const Layer& l : layers) layer_sum += l.forward + l.backward;
  return std::max(0.0, step_seconds - layer_sum);
}

StepProfile load_step_profile(const std::string& path) {
  ConfigMap root(load_yaml_file(path), path, "step profile");
  StepProfile p;
  p.file = path;
  p.model = root.get_string("model");
  if (root.get_int("workers") != 1)
    root.fail("workers", "a profile is measured on one worker (run `owt bench MODEL --profile --json` "
                         "without mpirun); the plan scales it to K workers");
  p.batch = root.get_int("batch");
  if (p.batch < 1) root.fail("batch", "must be >= 1");
  p.step_seconds = root.get_float("median_ms_per_step") * 1e-3;
  if (!root.has("layers")) root.fail("layers", "missing: measure with --profile");
  for (const YAML::Node& node : root.get_sequence("layers")) {
    ConfigMap m(node, path, "layers entry");
    StepProfile::Layer l;
    l.name = m.get_string("name");
    l.forward = m.get_float("forward_ms") * 1e-3;
    l.backward = m.get_float("backward_ms") * 1e-3;
    if (l.forward < 0 || l.backward < 0) m.fail("forward_ms", "times must be >= 0");
    p.layers.push_back(l);
  }
  if (p.layers.empty()) root.fail("layers", "no layers");
  if (p.step_seconds <= 0) root.fail("median_ms_per_step", "must be > 0");
  return p;
}

}  // namespace owt
