// Collective timings (parallel/comm_fit.h): the latency-bandwidth fit, reading between and
// beyond the measured sizes, rescaling to another worker count, the JSON round trip, and
// every malformed timings file refused with its file, line and field.
#include <gtest/gtest.h>

#include "owt/parallel/comm_fit.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace owt::test {
namespace {

TEST(CommFit, RecoversLatencyAndBandwidthFromExactPoints) {
  std::vector<CommPoint> pts;
  for (double bytes = 4096; bytes <= (1 << 28); bytes *= 4) pts.push_back({bytes, 2e-5 + bytes * 1e-10});
  const CommFit f = fit_latency_bandwidth(pts);
  EXPECT_NEAR(f.alpha, 2e-5, 1e-9);
  EXPECT_NEAR(f.beta, 1e-10, 1e-14);
  // One size: latency only. Times falling with size: latency only, never a negative beta.
  EXPECT_EQ(fit_latency_bandwidth({{4096, 1e-3}}).beta, 0);
  EXPECT_EQ(fit_latency_bandwidth({{4096, 2e-3}, {8192, 1e-3}}).beta, 0);
}

TEST(CommFit, TableReadsBetweenAndBeyondItsPoints) {
  CommOpTimings t;
  t.points = {{1000, 1e-3}, {3000, 3e-3}};
  t.fit = {0, 1e-6};
  EXPECT_DOUBLE_EQ(t.seconds(2000), 2e-3);         // between: linear
  EXPECT_DOUBLE_EQ(t.seconds(10), 1e-3);           // below: the smallest's (latency-bound)
  EXPECT_DOUBLE_EQ(t.seconds(5000), 3e-3 + 2e-3);  // above: the largest plus beta per byte
}

TEST(CommFit, RescalesToOtherWorkerCountsByRingTraffic) {
  CommCalibration c;
  c.workers = 2;
  CommOpTimings ar;
  ar.op = CommOp::AllReduce;
  ar.points = {{1e6, 1.1e-3}};
  ar.fit = {1e-4, 1e-9};
  c.ops = {ar};
  EXPECT_DOUBLE_EQ(c.seconds(CommOp::AllReduce, 1e6, 2), 1.1e-3);  // measured
  EXPECT_EQ(c.seconds(CommOp::AllReduce, 1e6, 1), 0);
  // K = 8: 7 latency steps instead of 1; a ring all-reduce sends 2(K-1)/K per element: 1.75
  // against 1 at K = 2.
  EXPECT_DOUBLE_EQ(c.seconds(CommOp::AllReduce, 1e6, 8), 7e-4 + 1.75e-3);
  expect_error([&] { c.seconds(CommOp::Broadcast, 1, 2); }, {"no timings for broadcast"});
}

TEST(CommFit, JsonRoundTrip) {
  CommCalibration c;
  c.communicator = "mpi";
  c.workers = 2;
  c.overlap = 0.25;
  CommOpTimings t;
  t.op = CommOp::ReduceScatter;
  t.points = {{4096, 2.5e-5}, {16384, 4e-5}};
  t.fit = fit_latency_bandwidth(t.points);
  c.ops = {t};
  TempDir dir;
  const CommCalibration back = load_comm_calibration(dir.write("c.json", comm_calibration_json(c)));
  EXPECT_EQ(back.communicator, "mpi");
  EXPECT_EQ(back.workers, 2);
  EXPECT_DOUBLE_EQ(back.overlap, 0.25);
  ASSERT_EQ(back.ops.size(), 1u);
  EXPECT_EQ(back.ops[0].op, CommOp::ReduceScatter);
  EXPECT_DOUBLE_EQ(back.ops[0].seconds(16384), 4e-5);
  EXPECT_NEAR(back.ops[0].fit.beta, t.fit.beta, 1e-5 * t.fit.beta);  // 6 digits written
}

TEST(CommFit, MalformedFilesNameTheField) {
  TempDir dir;
  auto file = [&](const std::string& name, const std::string& workers, const std::string& overlap,
                  const std::string& op, const std::string& points) {
    return dir.write(name, cat("{\"communicator\": \"mpi\", \"workers\": ", workers, ", \"overlap\": ", overlap,
                               ",\n \"ops\": [{\"op\": \"", op, "\", \"fit\": {\"alpha_s\": 1e-5, "
                               "\"beta_s_per_byte\": 1e-9}, \"points\": [", points, "]}]}"));
  };
  const std::string ok_points = "{\"bytes\": 4096, \"seconds\": 1e-5}, {\"bytes\": 8192, \"seconds\": 2e-5}";
  EXPECT_NO_THROW(load_comm_calibration(file("ok.json", "2", "0", "all_reduce", ok_points)));
  expect_error([&] { load_comm_calibration(file("one.json", "1", "0", "all_reduce", ok_points)); },
               {"one.json:1", "workers", "at least 2"});
  expect_error([&] { load_comm_calibration(file("ov.json", "2", "1.5", "all_reduce", ok_points)); },
               {"ov.json:1", "overlap"});
  expect_error([&] { load_comm_calibration(file("op.json", "2", "0", "all_to_all", ok_points)); },
               {"op.json:2", "op", "all_reduce"});
  expect_error([&] {
    load_comm_calibration(file("dec.json", "2", "0", "all_reduce",
                               "{\"bytes\": 8192, \"seconds\": 1e-5}, {\"bytes\": 4096, \"seconds\": 2e-5}"));
  }, {"dec.json:2", "bytes", "increasing"});
  expect_error([&] { load_comm_calibration(dir.write("empty.json", "{\"communicator\": \"mpi\"}")); },
               {"empty.json", "workers"});
}

}  // namespace
}  // namespace owt::test
