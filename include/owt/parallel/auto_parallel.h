// `parallel: auto`: the plan picks data or model parallelism for each linear layer marked auto
// (and so where the transition falls) by the step-time model's prediction for K workers at
// b rows each. Data-parallel layers come first, so the choices are: the transition at one of
// the auto layers (those before it data-parallel, it and those after model-parallel), or at
// none of them. The result depends only on the model, K, b and the calibration, so every rank
// computes the same one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "owt/parallel/comm_fit.h"
#include "owt/parallel/network_spec.h"
#include "owt/parallel/step_profile.h"

namespace owt {

struct AutoCandidate {
  std::string first_model;  // the first auto layer made model-parallel; "" for none of them
  double step_seconds = 0;  // predicted
  // "model-parallel from fc6", or "every auto layer data-parallel".
  std::string describe() const;
};

struct AutoChoice {
  bool any_auto = false;                // did the model ask for a choice at all
  std::vector<AutoCandidate> candidates;  // fastest first
  // The model with every auto replaced by the choice. Move it into place (`cfg.net =
  // std::move(c.spec)`): assigning a NetworkSpec over another assigns YAML::Nodes, which
  // writes through into every node they share.
  NetworkSpec spec;
  std::string inputs;                   // what the prediction came from, for messages
};

// True when some layer's `parallel` key, or `parallel.default`, is auto (read from the keys,
// without building the network).
bool has_auto_parallel(const NetworkSpec& spec);

// Chooses with a one-worker profile and a link calibration (measured or made by the two
// functions below); `inputs` names their files. Candidates that the plan refuses (a
// data-parallel layer after a model-parallel one the file fixed) are left out.
AutoChoice choose_parallel(const NetworkSpec& spec, int workers, int64_t batch, const StepProfile& profile,
                           const CommCalibration& comm);

// A profile from FLOPs alone: each layer's forward at `flops` FLOP/s (layers without FLOPs
// take none), backward twice its forward, no other time: the flag-based plan's compute.
StepProfile profile_from_flops(const NetworkSpec& spec, int64_t batch, double flops);
// A link of `bandwidth` bytes/s per worker with no latency, of which asynchronous collectives
// overlap compute by `overlap` (0..1; CommCalibration::overlap): each op takes its ring traffic
// per rank over bandwidth.
CommCalibration calibration_from_bandwidth(double bandwidth, int workers, double overlap);
// choose_parallel with those two made from a device's figures; `inputs` names the figures.
AutoChoice choose_parallel_from_figures(const NetworkSpec& spec, int workers, int64_t batch,
                                        double bandwidth_gbs, double tflops, double overlap);

// The model file's own inputs (spec.parallel.auto_inputs): the files it names, or its figures.
// Returns the spec unchanged (any_auto false) when nothing is auto or K = 1.
AutoChoice resolve_auto_parallel(const NetworkSpec& spec, int workers, int64_t batch);

}  // namespace owt
