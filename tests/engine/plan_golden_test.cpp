// `engine plan` for graphs/emtnet.toml at the paper's size, diffed against a checked-in dump, so
// that any change to what the compiler does (op order, shapes, parameters, FLOPs, fusions,
// memory plan) shows up as a reviewable diff. After an intended change, regenerate with
// EMT_UPDATE_GOLDEN=1 and commit the new dump with the change that caused it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/compiler/plan_report.h"
#include "engine/dsl/parser.h"

namespace emt {
namespace {

std::string source_dir() {
  const char* root = std::getenv("EMT_SOURCE_DIR");
  return root ? root : ".";
}

std::string plan_text(bool fuse) {
  const GraphFile file =
      parse_graph_file(source_dir() + "/graphs/emtnet.toml", {"data.input_size=224"});
  const Program program =
      compile(std::make_shared<const Graph>(file.graph), 1, Backend::kReference, {.fuse = fuse});
  return format_plan(program);
}

void expect_matches_golden(const std::string& actual, const std::string& name) {
  const std::string path = source_dir() + "/tests/golden/" + name;
  if (std::getenv("EMT_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path << " is missing: run with EMT_UPDATE_GOLDEN=1 to create it";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str()) << "the plan changed; if intended, regenerate " << path
                                    << " with EMT_UPDATE_GOLDEN=1 and review the diff";
}

TEST(PlanGolden, EmtNetTrainingPlanAt224) {
  expect_matches_golden(plan_text(false), "emtnet_plan.txt");
}

TEST(PlanGolden, EmtNetFusedInferencePlanAt224) {
  expect_matches_golden(plan_text(true), "emtnet_plan_fused.txt");
}

}  // namespace
}  // namespace emt
