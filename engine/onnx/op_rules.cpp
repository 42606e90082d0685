#include "engine/onnx/op_rules.h"

#include "engine/onnx/importer.h"

namespace emt::onnx_import {

const std::vector<OpRule>& op_rules() {
  using I = Importer;
  static const std::vector<OpRule> rules = {
      {"Conv",
       1,
       {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
       {1, 2},
       &I::import_conv},
      {"ConvTranspose",
       1,
       {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads",
        "strides"},
       {1, 2},
       &I::import_conv_transpose},
      {"BatchNormalization",
       6,
       {"epsilon", "momentum", "spatial", "is_test", "training_mode"},
       {1, 2, 3, 4},
       &I::import_batch_norm},
      {"Relu", 6, {}, {}, &I::import_relu},
      {"Sigmoid", 6, {}, {}, &I::import_sigmoid},
      {"Add", 7, {}, {}, &I::import_add},
      {"Clip", 6, {"min", "max"}, {1, 2}, &I::import_clip},
      {"Dropout", 7, {"ratio", "seed"}, {1, 2}, &I::import_dropout},
      {"Gemm", 6, {"alpha", "beta", "transA", "transB", "broadcast"}, {1, 2}, &I::import_gemm},
      {"MatMul", 1, {}, {1}, &I::import_matmul},
      {"GlobalAveragePool", 1, {}, {}, &I::import_global_avg_pool},
      {"Flatten", 1, {"axis"}, {}, &I::import_reshape},
      {"Reshape", 5, {"allowzero"}, {1}, &I::import_reshape},
      {"Identity", 1, {}, {}, &I::import_identity},
      {"Constant",
       1,
       {"value", "value_float", "value_floats", "value_int", "value_ints"},
       {},
       &I::import_constant},
      {"Transpose", 1, {"perm"}, {}, &I::import_transpose},
  };
  return rules;
}

const OpRule* find_rule(const std::string& op) {
  for (const OpRule& r : op_rules())
    if (op == r.op) return &r;
  return nullptr;
}

std::string supported_ops() {
  std::string s;
  for (const OpRule& r : op_rules()) s += (s.empty() ? "" : ", ") + std::string(r.op);
  return s;
}

}  // namespace emt::onnx_import
