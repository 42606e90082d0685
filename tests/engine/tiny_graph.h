// A tiny encoder-decoder graph with both heads, and settings for a small phantom set: shared by
// the tests that train, evaluate or run whole pipelines in seconds.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace emt::test {

// A tiny encoder-decoder with both heads for the training tests (32x32 inputs: 32 -> 16 -> 8
// and back, with LinkNet-style skip additions).
constexpr std::string_view kTinyGraph = R"toml(
[graph]
name = "tiny"
inputs = { image = [1, "${data.input_size}", "${data.input_size}"] }
targets = { label = [1], mask = [1, "${data.input_size}", "${data.input_size}"] }
outputs = { cls = "cls_prob", seg = "seg_prob" }
nodes = [
  { op = "conv2d", name = "c1", in = "image", out = 8, kernel = 3, bias = false },
  { op = "batch_norm", name = "bn1" },
  { op = "relu", name = "r1" },
  { op = "conv2d", name = "c2", out = 16, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn2" },
  { op = "relu", name = "r2" },
  { op = "conv2d", name = "c3", out = 16, kernel = 3, stride = 2, bias = false },
  { op = "batch_norm", name = "bn3" },
  { op = "relu", name = "r3" },
  { op = "conv_transpose2d", name = "u3", out = 16, kernel = 3, stride = 2, pad = 1, output_pad = 1, bias = false },
  { op = "batch_norm", name = "ubn3" },
  { op = "relu", name = "ur3" },
  { op = "add", name = "s2", in = ["ur3", "r2"] },
  { op = "conv_transpose2d", name = "u2", out = 8, kernel = 3, stride = 2, pad = 1, output_pad = 1, bias = false },
  { op = "batch_norm", name = "ubn2" },
  { op = "relu", name = "ur2" },
  { op = "add", name = "s1", in = ["ur2", "r1"] },
  { op = "conv2d", name = "seg_logit", out = 1, kernel = 3 },
  { op = "sigmoid", name = "seg_prob" },
  { op = "global_avg_pool", name = "gap", in = "r3" },
  { op = "dense", name = "fc", out = 16 },
  { op = "relu", name = "fc_relu" },
  { op = "dense", name = "cls_logit", out = 1 },
  { op = "sigmoid", name = "cls_prob" },
]

[objective]
terms = [
  { loss = "weighted_bce", input = "cls_logit", target = "label", pos_weight = "${objective.w_p}", weight = "${objective.w_c}" },
  { loss = "dice", input = "seg_prob", target = "mask", weight = 1.0 },
]

[data]
input_size = 32
)toml";

// Small phantoms keep data generation cheap; the network sees them at 32x32 anyway.
inline const std::vector<std::string> kSmallData = {
    "data.count=40",
    "data.input_size=32",
    "data.phantom_min_side=96",
    "data.phantom_max_side=128",
    "train.epochs=2",
    "train.batch=4",
    "eval.batch=8",
};

}  // namespace emt::test
