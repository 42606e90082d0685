// Block parameter defaults and ops chosen by a parameter (op = "${act}"), which make ReLU6 and
// TF SAME padding options of the shared MobileNetV1 blocks; and the graphs built with them:
// emtnet.toml unchanged, emtnet_pretrained.toml (the same parameters, pretrained semantics) and
// mobilenet_v1_075_classifier.toml (the 0.75 ImageNet classifier the TFLite importer is tested
// on).
#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/compiler/program.h"
#include "engine/dsl/parser.h"
#include "engine/ir/source_loc.h"
#include "tests/engine/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
using emt::Program;
using emt::Shape;

Program compile_file(const fs::path& path, const std::vector<std::string>& overrides = {}) {
  emt::GraphFile file = emt::parse_graph_file(path, overrides);
  return emt::compile(std::make_shared<const emt::Graph>(std::move(file.graph)), 1);
}

fs::path graphs_dir() {
  const char* source = std::getenv("EMT_SOURCE_DIR");
  return (source && *source ? fs::path(source) : fs::current_path()) / "graphs";
}

// The GraphError's first line must hold file:line and every fragment.
void expect_parse_error(const fs::path& path, int line, const std::vector<std::string>& fragments) {
  try {
    emt::parse_graph_file(path);
    ADD_FAILURE() << path << " parsed";
  } catch (const emt::GraphError& e) {
    const std::string what = e.what();
    const std::string where = path.filename().string() + ":" + std::to_string(line) + ":";
    EXPECT_NE(what.substr(0, what.find('\n')).find(where), std::string::npos) << what;
    for (const std::string& f : fragments)
      EXPECT_NE(what.find(f), std::string::npos) << "'" << f << "' not in " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a GraphError: " << e.what();
  }
}

const emt::Node& node(const Program& p, const std::string& name) {
  return *p.steps.at(p.values.at(p.value(name)).producer).node;
}

using BlockDefaults = emt::test::TempDirTest;

// Lines 1-8 define the block (defaults on line 3, the activation on line 7); the [graph] node
// on line 15 is `use_line`.
std::string unit_file(const std::string& defaults, const std::string& use_line) {
  return R"toml(
[block.unit]
params = ["out", "act", "pad_mode"]
)toml" + defaults +
         R"toml(
body = [
  { op = "conv2d", name = "conv", out = "${out}", kernel = 3, stride = 2, pad_mode = "${pad_mode}", bias = false },
  { op = "batch_norm", name = "bn" },
  { op = "${act}", name = "relu" },
]

[graph]
name = "t"
inputs = { image = [4, 8, 8] }
outputs = { y = "b" }
nodes = [
  )toml" +
         use_line +
         R"toml(
]
)toml";
}

const std::string kDefaults = R"(defaults = { act = "relu", pad_mode = "explicit" })";

TEST_F(BlockDefaults, DefaultsFillOmittedArguments) {
  const Program p = compile_file(write(
      "t.toml",
      unit_file(kDefaults, R"({ use = "unit", name = "b", in = "image", args = { out = 6 } },)")));
  EXPECT_EQ(node(p, "b.relu").op, "relu");
  EXPECT_EQ(node(p, "b.conv").attrs.get_string("pad_mode"), "explicit");
  EXPECT_EQ(p.values[p.value("b.conv")].shape, (Shape{1, 6, 4, 4}));
}

TEST_F(BlockDefaults, ArgumentsOverrideDefaultsAndChooseTheOp) {
  const Program p = compile_file(write(
      "t.toml",
      unit_file(
          kDefaults,
          R"({ use = "unit", name = "b", in = "image", args = { out = 6, act = "relu6", pad_mode = "same_tf" } },)")));
  EXPECT_EQ(node(p, "b.relu").op, "relu6");
  EXPECT_EQ(node(p, "b.conv").attrs.get_string("pad_mode"), "same_tf");
  EXPECT_EQ(p.values[p.value("b.conv")].shape, (Shape{1, 6, 4, 4}));  // ceil(8 / 2)
}

TEST_F(BlockDefaults, WithoutDefaultsArgumentsStayRequired) {
  const fs::path path =
      write("t.toml",
            unit_file("", R"({ use = "unit", name = "b", in = "image", args = { out = 6 } },)"));
  expect_parse_error(path, 15, {"block 'unit' needs argument 'act'"});
}

TEST_F(BlockDefaults, DefaultForAnUnknownParameter) {
  const fs::path path = write(
      "t.toml", unit_file(R"(defaults = { act = "relu", width = 2 })",
                          R"({ use = "unit", name = "b", in = "image", args = { out = 6 } },)"));
  expect_parse_error(path, 3, {"default for 'width'", "not a parameter of block 'unit'"});
}

TEST_F(BlockDefaults, DefaultMustBeASingleValue) {
  const fs::path path = write(
      "t.toml", unit_file(R"(defaults = { act = ["relu"] })",
                          R"({ use = "unit", name = "b", in = "image", args = { out = 6 } },)"));
  expect_parse_error(path, 3, {"default of parameter 'act' must be a single value"});
}

TEST_F(BlockDefaults, UnknownOpThroughAParameter) {
  const fs::path path = write(
      "t.toml",
      unit_file(
          kDefaults,
          R"({ use = "unit", name = "b", in = "image", args = { out = 6, act = "gelu" } },)"));
  expect_parse_error(path, 7, {"unknown op 'gelu'", "relu6"});
}

TEST_F(BlockDefaults, BadPadModeIsReportedAtTheNode) {
  const fs::path path = write(
      "t.toml",
      unit_file(
          kDefaults,
          R"({ use = "unit", name = "b", in = "image", args = { out = 6, pad_mode = "same" } },)"));
  try {
    compile_file(path);
    ADD_FAILURE() << "pad_mode = same compiled";
  } catch (const emt::GraphError& e) {
    EXPECT_NE(std::string(e.what()).find("explicit, same_tf"), std::string::npos) << e.what();
  }
}

TEST_F(BlockDefaults, UnknownBlockKeyListsDefaults) {
  const fs::path path = write(
      "t.toml",
      unit_file(R"(default = { act = "relu" })", R"({ use = "unit", name = "b", in = "image" },)"));
  expect_parse_error(path, 3, {"unknown key 'default'", "params, defaults, body, doc"});
}

// ---------------------------------------------------------------------------------------------
// The real graphs

std::vector<const emt::Step*> steps_under(const Program& p, const std::string& prefix,
                                          const std::string& op) {
  std::vector<const emt::Step*> out;
  for (const emt::Step& s : p.steps)
    if (s.node->name.rfind(prefix, 0) == 0 && s.node->op == op) out.push_back(&s);
  return out;
}

TEST(PretrainedGraphs, EmtNetIsUnchanged) {
  const Program p = compile_file(graphs_dir() / "emtnet.toml", {"data.input_size=224"});
  EXPECT_EQ(p.trainable_param_count(), 5125794);
  EXPECT_EQ(steps_under(p, "backbone.", "relu").size(), 27u);
  EXPECT_TRUE(steps_under(p, "", "relu6").empty());
  for (const emt::Step* s : steps_under(p, "", "conv2d"))
    EXPECT_EQ(s->node->attrs.get_string("pad_mode"), "explicit") << s->node->name;
}

TEST(PretrainedGraphs, EmtNetPretrainedHasTheSameParametersAndTfSemantics) {
  const Program plain = compile_file(graphs_dir() / "emtnet.toml", {"data.input_size=224"});
  const Program p = compile_file(graphs_dir() / "emtnet_pretrained.toml", {"data.input_size=224"});
  EXPECT_EQ(p.trainable_param_count(), 5125794);
  ASSERT_EQ(p.params.size(), plain.params.size());
  for (size_t i = 0; i < p.params.size(); ++i) {
    EXPECT_EQ(p.params[i].name, plain.params[i].name);
    EXPECT_EQ(p.params[i].spec.shape, plain.params[i].spec.shape) << p.params[i].name;
  }
  const auto convs = steps_under(p, "backbone.", "conv2d");
  ASSERT_EQ(convs.size(), 27u);
  for (const emt::Step* s : convs)
    EXPECT_EQ(s->node->attrs.get_string("pad_mode"), "same_tf") << s->node->name;
  EXPECT_EQ(steps_under(p, "backbone.", "relu6").size(), 27u);
  EXPECT_TRUE(steps_under(p, "backbone.", "relu").empty());
  // The heads are EMT-Net's.
  for (const emt::Step* s : steps_under(p, "seg.", "conv2d"))
    EXPECT_EQ(s->node->attrs.get_string("pad_mode"), "explicit") << s->node->name;
  EXPECT_FALSE(steps_under(p, "seg.", "relu").empty());
  EXPECT_TRUE(steps_under(p, "seg.", "relu6").empty());
  // Same shapes as EMT-Net (TF SAME halves even sizes exactly like pad 1 does).
  EXPECT_EQ(p.values[p.value("backbone")].shape, (Shape{1, 1024, 7, 7}));
  EXPECT_EQ(p.values[p.outputs.at("seg")].shape, (Shape{1, 1, 224, 224}));

  const emt::GraphFile file = emt::parse_graph_file(graphs_dir() / "emtnet_pretrained.toml");
  EXPECT_DOUBLE_EQ(file.config.get_float("data.norm_mean"), 128.0 / 255.0);
  EXPECT_DOUBLE_EQ(file.config.get_float("data.norm_std"), 128.0 / 255.0);
}

// The ablation's baselines for emtnet_pretrained.toml (engine experiment ablation picks
// single_clf<S>.toml and single_sgm<S>.toml beside emtnet<S>.toml): each parameter is one of
// EMT-Net's, with its shape, and the backbone and input normalisation are the pretrained ones,
// so that the same train.init_weights file fits all three.
TEST(PretrainedGraphs, AblationBaselinesShareThePretrainedBackbone) {
  const Program emtnet =
      compile_file(graphs_dir() / "emtnet_pretrained.toml", {"data.input_size=224"});
  std::map<std::string, Shape> shapes;
  for (const emt::ParamInfo& param : emtnet.params) shapes[param.name] = param.spec.shape;
  for (const char* name : {"single_clf_pretrained.toml", "single_sgm_pretrained.toml"}) {
    const Program p = compile_file(graphs_dir() / name, {"data.input_size=224"});
    for (const emt::ParamInfo& param : p.params) {
      ASSERT_TRUE(shapes.count(param.name)) << name << ": " << param.name;
      EXPECT_EQ(shapes[param.name], param.spec.shape) << name << ": " << param.name;
    }
    const auto convs = steps_under(p, "backbone.", "conv2d");
    ASSERT_EQ(convs.size(), 27u) << name;
    for (const emt::Step* s : convs)
      EXPECT_EQ(s->node->attrs.get_string("pad_mode"), "same_tf") << name << ": " << s->node->name;
    EXPECT_EQ(steps_under(p, "backbone.", "relu6").size(), 27u) << name;
    const emt::GraphFile file = emt::parse_graph_file(graphs_dir() / name);
    EXPECT_DOUBLE_EQ(file.config.get_float("data.norm_mean"), 128.0 / 255.0) << name;
    EXPECT_DOUBLE_EQ(file.config.get_float("data.norm_std"), 128.0 / 255.0) << name;
  }
}

TEST(PretrainedGraphs, MobileNetV1075Classifier) {
  const Program p = compile_file(graphs_dir() / "mobilenet_v1_075_classifier.toml");
  // MobileNetV1 0.75: 2.59 M parameters (batch-norm scale and shift included).
  EXPECT_EQ(p.trainable_param_count(), 2586329);
  EXPECT_EQ(p.values[p.value("image")].shape, (Shape{1, 3, 192, 192}));
  EXPECT_EQ(p.values[p.value("backbone")].shape, (Shape{1, 768, 6, 6}));
  EXPECT_EQ(p.values[p.outputs.at("logits")].shape, (Shape{1, 1001}));
  const std::vector<int64_t> widths = {24,  48,  96,  96,  192, 192, 384,
                                       384, 384, 384, 384, 384, 768, 768};
  EXPECT_EQ(p.values[p.value("backbone.stem")].shape[1], widths[0]);
  for (int b = 1; b <= 13; ++b)
    EXPECT_EQ(p.values[p.value("backbone.ds" + std::to_string(b))].shape[1], widths[b]) << b;
  EXPECT_EQ(steps_under(p, "backbone.", "relu6").size(), 27u);
  for (const emt::Step* s : steps_under(p, "backbone.", "conv2d"))
    EXPECT_EQ(s->node->attrs.get_string("pad_mode"), "same_tf") << s->node->name;
}

}  // namespace
