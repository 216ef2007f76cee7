// Measured collective times and the latency-bandwidth model fitted to them (Hockney's
// t = alpha + beta * bytes): what `owt bench --comm` writes and `owt plan --comm` reads.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "owt/comm/communicator.h"

namespace owt {

// Message size "per rank", as the benchmark and the plan count it: the buffer of an all-reduce,
// broadcast or reduce; what each rank contributes to an all-gather; what each rank receives
// from a reduce-scatter.
struct CommPoint {
  double bytes = 0, seconds = 0;
};

struct CommFit {
  double alpha = 0;  // seconds per call
  double beta = 0;   // seconds per byte (per rank)
  double seconds(double bytes) const { return alpha + beta * bytes; }
};

// Least squares on relative error (each point weighted 1/t^2, so 4 KiB counts as much as
// 256 MiB), alpha and beta kept >= 0. Needs at least one point.
CommFit fit_latency_bandwidth(const std::vector<CommPoint>& points);

struct CommOpTimings {
  CommOp op = CommOp::AllReduce;
  std::vector<CommPoint> points;  // increasing bytes
  CommFit fit;
  // Seconds for `bytes` at the measured worker count: linear between the two measured points
  // around it; below the smallest, the smallest's time (latency-bound); above the largest, the
  // largest's time plus beta per further byte.
  double seconds(double bytes) const;
};

// Elements each rank sends per element of its message when a ring runs `op` among `workers`
// workers (the cost model's conventions, cost_model.h): 2(K-1)/K for an all-reduce, K-1 for an
// all-gather or reduce-scatter (one block from or to each rank), (K-1)/K for broadcast and reduce.
double ring_traffic(CommOp op, int workers);

// The calibration of one communicator at one worker count (`owt bench --comm --json`).
struct CommCalibration {
  std::string file;        // where it was read from, for messages
  std::string communicator;
  int workers = 0;
  // Share of an asynchronous collective that runs while the caller computes, 0..1 (measured:
  // a 16 MiB all-reduce against gemms of the same length, the caller testing it between them
  // as the gradient buckets do). NCCL on its own stream: near 1. MPI without a progress
  // thread moves only inside MPI calls: near 0.
  double overlap = 0;
  std::vector<CommOpTimings> ops;
  // The timings of `op`; owt::Error naming the file when it has none.
  const CommOpTimings& of(CommOp op) const;
  // Predicted seconds of one `op` call moving `bytes` per rank among `workers` workers: the
  // measured table when workers == this->workers; otherwise the fit, its latency scaled by the
  // ring's steps ((K-1)/(Kc-1)) and its per-byte term by the ring's traffic per rank
  // (comm cost model) at K over that at the measured Kc. Zero for one worker.
  double seconds(CommOp op, double bytes, int workers) const;
};

// Reads `owt bench --comm --json` output; owt::Error naming the file and field on bad input.
CommCalibration load_comm_calibration(const std::string& path);

// The JSON `owt bench --comm --json` prints (one object, one line).
std::string comm_calibration_json(const CommCalibration& c);

}  // namespace owt
