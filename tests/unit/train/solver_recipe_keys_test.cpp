// The ResNet recipe's keys: the solver's `nesterov` and the loss layer's `label_smoothing` parse
// with their defaults, and bad values (Nesterov without momentum, smoothing outside [0, 1)) are
// errors naming test.yaml:<line> and the field.
#include <gtest/gtest.h>

#include <string>

#include "owt/train/model_config.h"
#include "support/expect_error.h"

namespace owt::test {
namespace {

// A model file whose solver's extra keys start on line 8.
std::string model_with_solver(const std::string& extra, const std::string& loss_extra = "") {
  return "name: tiny\n"                                       // 1
         "input: [1, 4, 4]\n"                                 // 2
         "classes: 3\n"                                       // 3
         "data: {path: /nonexistent}\n"                       // 4
         "layers:\n"                                          // 5
         "  - {name: fc, type: linear, outputs: 3}\n"         // 6
         "  - {name: loss, type: softmax_cross_entropy" + loss_extra + "}\n"  // 7
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
  EXPECT_FALSE(solver_of("").nesterov);
}

TEST(SolverRecipeKeys, Parse) {
  EXPECT_TRUE(solver_of("  nesterov: true\n").nesterov);
  EXPECT_FALSE(solver_of("  nesterov: false\n").nesterov);
}

TEST(SolverRecipeKeys, NesterovNeedsMomentum) {
  expect_error([] { solver_of("  momentum: 0\n  nesterov: true\n"); },
               {"test.yaml:13", "field 'nesterov'", "momentum"});
  EXPECT_TRUE(solver_of("  momentum: 0.5\n  nesterov: true\n").nesterov);
  expect_error([] { solver_of("  nesterov: maybe\n"); }, {"test.yaml:12", "field 'nesterov'"});
}

// label_smoothing belongs to the loss (as in PyTorch's CrossEntropyLoss), not the solver.
TEST(SolverRecipeKeys, LabelSmoothingIsALossKeyInRange) {
  auto parse = [](const std::string& loss_extra) {
    return parse_model_config(model_with_solver("", loss_extra), "test.yaml");
  };
  EXPECT_NO_THROW(parse(", label_smoothing: 0.1"));
  EXPECT_NO_THROW(parse(", label_smoothing: 0"));
  expect_error([&] { parse(", label_smoothing: 1"); },
               {"test.yaml:7", "field 'label_smoothing'", "[0, 1)"});
  expect_error([&] { parse(", label_smoothing: -0.1"); },
               {"test.yaml:7", "field 'label_smoothing'", "[0, 1)"});
  expect_error([&] { parse(", label_smoothing: lots"); }, {"test.yaml:7", "field 'label_smoothing'"});
  expect_error([] { solver_of("  label_smoothing: 0.1\n"); },
               {"test.yaml:12", "unknown key 'label_smoothing'"});
}

}  // namespace
}  // namespace owt::test
