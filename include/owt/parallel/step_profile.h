// StepProfile: one worker's measured training step, layer by layer, as
// `owt bench MODEL --profile --json` prints it; the compute the step-time model scales.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace owt {

struct StepProfile {
  std::string file;     // where it was read from, for messages
  std::string model;    // the model's name
  int64_t batch = 0;    // rows per step on the one worker
  double step_seconds = 0;  // median step, layers and everything else (update, zeroing)
  struct Layer {
    std::string name;
    double forward = 0, backward = 0;  // seconds, medians over the timed steps
  };
  std::vector<Layer> layers;  // in file order, the loss last
  // The layer called `name`; owt::Error naming the file when it has none.
  const Layer& of(const std::string& name) const;
  // step_seconds minus every layer's forward and backward (never below 0).
  double other_seconds() const;
};

// Reads `owt bench MODEL --profile --json` output measured on one worker; owt::Error naming
// the file and field on bad input, or when it was measured on several workers or without
// --profile.
StepProfile load_step_profile(const std::string& path);

}  // namespace owt
