// Fitting and reading collective timings: the weighted least-squares fit, interpolation in the
// measured table, scaling to another worker count, and the JSON `owt bench --comm` writes.
#include "owt/parallel/comm_fit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "owt/core/config_map.h"
#include "owt/core/error.h"
#include "owt/parallel/cost_model.h"

namespace owt {

CommFit fit_latency_bandwidth(const std::vector<CommPoint>& points) {
  OWT_CHECK(!points.empty(), "fit_latency_bandwidth needs a point");
  // Minimise sum w (alpha + beta x - t)^2 with w = 1/t^2: the normal equations of two unknowns.
  double sw = 0, sx = 0, sxx = 0, st = 0, sxt = 0;
  for (const CommPoint& p : points) {
    const double w = 1.0 / std::max(p.seconds * p.seconds, 1e-30);
    sw += w, sx += w * p.bytes, sxx += w * p.bytes * p.bytes, st += w * p.seconds,
        sxt += w * p.bytes * p.seconds;
  }
  CommFit f;
  const double det = sw * sxx - sx * sx;
  if (det > 0) {
    f.alpha = (sxx * st - sx * sxt) / det;
    f.beta = (sw * sxt - sx * st) / det;
  }
  if (det <= 0 || f.beta < 0) {  // one size, or times that fall with size: latency only
    f.alpha = st / sw, f.beta = 0;
  } else if (f.alpha < 0) {  // bandwidth only
    f.alpha = 0, f.beta = sxx > 0 ? sxt / sxx : 0;
  }
  return f;
}

double ring_traffic(CommOp op, int k) {
  switch (op) {
    case CommOp::AllReduce: return all_reduce_cost(1, k);
    case CommOp::AllGather: return all_gather_cost(k, k);        // a block from each rank
    case CommOp::ReduceScatter: return reduce_scatter_cost(k, k);
    case CommOp::Broadcast: return broadcast_cost(1, k);
    case CommOp::Reduce: return reduce_cost(1, k);
    default: return 1;
  }
}

double CommOpTimings::seconds(double bytes) const {
  if (points.empty()) return fit.seconds(bytes);
  if (bytes <= points.front().bytes) return points.front().seconds;
  for (size_t i = 1; i < points.size(); ++i)
    if (bytes <= points[i].bytes) {
      const CommPoint &a = points[i - 1], &b = points[i];
      return a.seconds + (b.seconds - a.seconds) * (bytes - a.bytes) / (b.bytes - a.bytes);
    }
  return points.back().seconds + fit.beta * (bytes - points.back().bytes);
}

namespace {

const std::vector<std::pair<std::string, CommOp>>& op_names() {
  static const std::vector<std::pair<std::string, CommOp>> names = {
      {comm_op_name(CommOp::AllReduce), CommOp::AllReduce},
      {comm_op_name(CommOp::AllGather), CommOp::AllGather},
      {comm_op_name(CommOp::ReduceScatter), CommOp::ReduceScatter},
      {comm_op_name(CommOp::Broadcast), CommOp::Broadcast},
      {comm_op_name(CommOp::Reduce), CommOp::Reduce}};
  return names;
}

}  // namespace

const CommOpTimings& CommCalibration::of(CommOp op) const {
  for (const CommOpTimings& t : ops)
    if (t.op == op) return t;
  throw Error(cat(file, ": no timings for ", comm_op_name(op),
                  " (measure them with `mpirun -np K owt bench --comm --json`)"));
}

double CommCalibration::seconds(CommOp op, double bytes, int k) const {
  if (k <= 1) return 0;
  const CommOpTimings& t = of(op);
  if (k == workers) return t.seconds(bytes);
  const double latency_steps = static_cast<double>(k - 1) / std::max(1, workers - 1);
  return t.fit.alpha * latency_steps + t.fit.beta * bytes * ring_traffic(op, k) / ring_traffic(op, workers);
}

CommCalibration load_comm_calibration(const std::string& path) {
  ConfigMap root(load_yaml_file(path), path, "communication timings");
  CommCalibration c;
  c.file = path;
  c.communicator = root.get_string("communicator");
  c.workers = static_cast<int>(root.get_int("workers"));
  if (c.workers < 2) root.fail("workers", "timings need at least 2 workers (measured under mpirun -np K, K >= 2)");
  c.overlap = root.get_float("overlap");
  if (c.overlap < 0 || c.overlap > 1) root.fail("overlap", "must lie in [0, 1]");
  for (const YAML::Node& node : root.get_sequence("ops")) {
    ConfigMap m(node, path, "ops entry");
    CommOpTimings t;
    t.op = m.get_enum("op", op_names(), CommOp::Count);
    if (t.op == CommOp::Count) m.fail("op", "missing");
    ConfigMap fit = m.get_map("fit");
    t.fit.alpha = fit.get_float("alpha_s");
    t.fit.beta = fit.get_float("beta_s_per_byte");
    if (t.fit.alpha < 0 || t.fit.beta < 0) fit.fail("alpha_s", "alpha and beta must be >= 0");
    for (const YAML::Node& pn : m.get_sequence("points")) {
      ConfigMap pm(pn, path, cat(comm_op_name(t.op), " point"));
      CommPoint p{pm.get_float("bytes"), pm.get_float("seconds")};
      if (p.bytes <= 0 || p.seconds < 0 || (!t.points.empty() && p.bytes <= t.points.back().bytes))
        pm.fail("bytes", "points need bytes > 0, increasing, and seconds >= 0");
      t.points.push_back(p);
    }
    c.ops.push_back(t);
  }
  if (c.ops.empty()) root.fail("ops", "no collectives timed");
  return c;
}

std::string comm_calibration_json(const CommCalibration& c) {
  const std::vector<CommOpTimings>& ops = c.ops;
  char num[64];
  std::snprintf(num, sizeof num, "%.3f", c.overlap);
  std::string out = cat("{\"communicator\": \"", c.communicator, "\", \"workers\": ", c.workers,
                        ", \"overlap\": ", num, ", \"ops\": [");
  for (size_t i = 0; i < ops.size(); ++i) {
    const CommOpTimings& t = ops[i];
    std::snprintf(num, sizeof num, "%.6g, \"beta_s_per_byte\": %.6g", t.fit.alpha, t.fit.beta);
    out += cat(i ? ", " : "", "{\"op\": \"", comm_op_name(t.op), "\", \"fit\": {\"alpha_s\": ", num,
               "}, \"points\": [");
    for (size_t j = 0; j < t.points.size(); ++j) {
      std::snprintf(num, sizeof num, "%.0f, \"seconds\": %.6g", t.points[j].bytes, t.points[j].seconds);
      out += cat(j ? ", " : "", "{\"bytes\": ", num, "}");
    }
    out += "]}";
  }
  return out + "]}";
}

}  // namespace owt
