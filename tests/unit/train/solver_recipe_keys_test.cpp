// The ResNet recipe's solver keys: `nesterov` and `label_smoothing` parse with their defaults,
// and bad values (Nesterov without momentum, smoothing outside [0, 1)) are errors naming
// test.yaml:<line> and the field.
#include <gtest/gtest.h>

#include <string>

#include "owt/train/model_config.h"
#include "support/expect_error.h"

namespace owt::test {
namespace {

// A model file whose solver's extra keys start on line 8.
std::string model_with_solver(const std::string& extra) {
  return "name: tiny\n"                                       // 1
         "input: [1, 4, 4]\n"                                 // 2
         "classes: 3\n"                                       // 3
         "data: {path: /nonexistent}\n"                       // 4
         "layers:\n"                                          // 5
         "  - {name: fc, type: linear, outputs: 3}\n"         // 6
         "  - {name: loss, type: softmax_cross_entropy}\n"    // 7
         "solver:\n"                                          // 8
         "  lr: 0.1\n"                                        // 9
         "  batch: 4\n"                                       // 10
         "  epochs: 1\n" +                                    // 11
         extra;                                               // 12...
}

SolverConfig solver_of(const std::string& extra) {
  return parse_model_config(model_with_solver(extra), "test.yaml").solver;
}

TEST(SolverRecipeKeys, Defaults) {
  const SolverConfig s = solver_of("");
  EXPECT_FALSE(s.nesterov);
  EXPECT_EQ(s.label_smoothing, 0.0);
}

TEST(SolverRecipeKeys, Parse) {
  const SolverConfig s = solver_of("  nesterov: true\n  label_smoothing: 0.1\n");
  EXPECT_TRUE(s.nesterov);
  EXPECT_DOUBLE_EQ(s.label_smoothing, 0.1);
  EXPECT_FALSE(solver_of("  nesterov: false\n").nesterov);
}

TEST(SolverRecipeKeys, NesterovNeedsMomentum) {
  expect_error([] { solver_of("  momentum: 0\n  nesterov: true\n"); },
               {"test.yaml:13", "field 'nesterov'", "momentum"});
  EXPECT_TRUE(solver_of("  momentum: 0.5\n  nesterov: true\n").nesterov);
  expect_error([] { solver_of("  nesterov: maybe\n"); }, {"test.yaml:12", "field 'nesterov'"});
}

TEST(SolverRecipeKeys, LabelSmoothingInRange) {
  expect_error([] { solver_of("  label_smoothing: 1\n"); },
               {"test.yaml:12", "field 'label_smoothing'", "[0, 1)"});
  expect_error([] { solver_of("  label_smoothing: -0.1\n"); },
               {"test.yaml:12", "field 'label_smoothing'", "[0, 1)"});
  expect_error([] { solver_of("  label_smoothing: lots\n"); },
               {"test.yaml:12", "field 'label_smoothing'"});
  EXPECT_DOUBLE_EQ(solver_of("  label_smoothing: 0\n").label_smoothing, 0.0);
}

}  // namespace
}  // namespace owt::test
