#include "engine/mobile/lower.h"

#include <stdexcept>

#include "engine/compiler/fusion.h"
#include "engine/dsl/parser.h"
#include "engine/runtime/model.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv_transpose2d/conv_transpose2d.h"

namespace emt {
namespace {

mobile::Activation activation(ConvActivation a) {
  switch (a) {
    case ConvActivation::kRelu:
      return mobile::Activation::kRelu;
    case ConvActivation::kRelu6:
      return mobile::Activation::kRelu6;
    case ConvActivation::kNone:
      break;
  }
  return mobile::Activation::kNone;
}

mobile::ConvDesc conv_desc(const ConvGeometry& g, ConvActivation act) {
  const auto u = [](int64_t v) { return static_cast<uint32_t>(v); };
  return {u(g.cin),      u(g.h),          u(g.w),         u(g.cout),      u(g.ho),
          u(g.wo),       u(g.kernel),     u(g.stride),    u(g.groups),    u(g.pad_top),
          u(g.pad_left), u(g.pad_bottom), u(g.pad_right), activation(act)};
}

// A per-image [C, H, W] from a value's [1, ...] shape: [1, K] is [K, 1, 1].
mobile::ValueDesc value_desc(const std::string& name, const Shape& shape) {
  mobile::ValueDesc v{name, 1, 1, 1};
  uint32_t* dims[] = {&v.channels, &v.height, &v.width};
  if (shape.size() < 2 || shape.size() > 4)
    throw std::runtime_error("graph2mobile: value '" + name + "' " + shape_str(shape) +
                             " is neither [N, C] nor [N, C, H, W]");
  for (size_t i = 1; i < shape.size(); ++i) *dims[i - 1] = static_cast<uint32_t>(shape[i]);
  return v;
}

class Lowering {
 public:
  Lowering(Model& model, const Program& program) : model_(model), program_(program) {}

  mobile::Artifact run() {
    for (const ValueInfo& v : program_.values)
      artifact_.values.push_back(value_desc(v.name, v.shape));
    artifact_.graph = program_.graph->name;
    artifact_.image = static_cast<uint32_t>(program_.value(program_.graph->inputs.front().name));
    for (const auto& [name, v] : program_.outputs)
      artifact_.outputs[name] = static_cast<uint32_t>(v);
    for (const Step& step : program_.steps) artifact_.steps.push_back(lower(step));
    const Objective& objective = program_.graph->objective;
    for (const GraphInput& t : program_.graph->targets) {
      Shape shape{1};
      shape.insert(shape.end(), t.shape.begin(), t.shape.end());
      artifact_.targets.push_back(value_desc(t.name, shape));
    }
    for (const LossTerm& term : objective.terms) {
      uint32_t target = 0;
      while (target < artifact_.targets.size() && artifact_.targets[target].name != term.target)
        ++target;
      artifact_.objective.push_back({term.kind, static_cast<uint32_t>(program_.value(term.input)),
                                     target, term.weight, term.pos_weight, term.eps});
    }
    return std::move(artifact_);
  }

 private:
  [[noreturn]] void unsupported(const Step& step, const std::string& why) const {
    throw GraphError(step.node->loc, "graph2mobile: node '" + fusion_label(step) + "' (" +
                                         step.node->op + ") " + why);
  }

  mobile::WeightRef append(const float* data, size_t count) {
    mobile::WeightRef ref{artifact_.weights.size(), count};
    artifact_.weights.insert(artifact_.weights.end(), data, data + count);
    return ref;
  }
  const std::vector<float>& param(int index) const {
    return model_.params().at(program_.params[static_cast<size_t>(index)].name).value;
  }

  // The convolution's weight and bias, with a batch norm folded in when the step absorbed one.
  void add_conv_params(const Step& step, mobile::StepDesc& desc) {
    if (!step.fold) {
      const std::vector<float>& weight = param(step.params.at(0));
      desc.weight = append(weight.data(), weight.size());
      if (step.params.size() > 1) {
        const std::vector<float>& bias = param(step.params[1]);
        desc.bias = append(bias.data(), bias.size());
      }
      return;
    }
    const BatchNormFold& f = *step.fold;
    const Shape& shape = program_.params[static_cast<size_t>(f.weight)].spec.shape;
    std::vector<float> weight(static_cast<size_t>(shape_numel(shape)));
    std::vector<float> bias(static_cast<size_t>(shape[static_cast<size_t>(f.channel_axis)]));
    fold_batch_norm(shape, f.channel_axis, f.eps, param(f.weight).data(),
                    f.bias >= 0 ? param(f.bias).data() : nullptr, param(f.gamma).data(),
                    param(f.beta).data(), param(f.mean).data(), param(f.var).data(), weight.data(),
                    bias.data());
    desc.weight = append(weight.data(), weight.size());
    desc.bias = append(bias.data(), bias.size());
  }

  mobile::StepDesc lower(const Step& step) {
    mobile::StepDesc desc;
    desc.name = fusion_label(step);
    for (int v : step.inputs) desc.inputs.push_back(static_cast<uint32_t>(v));
    desc.output = static_cast<uint32_t>(step.output);
    const OpId op = step.node->id;
    const Shape& input = program_.values[static_cast<size_t>(step.inputs.at(0))].shape;
    if (op == OpId::conv2d) {
      const auto& conv = dynamic_cast<const Conv2dOp&>(*step.op);
      desc.kind = mobile::StepKind::kConv2d;
      desc.conv = conv_desc(conv.geometry(input), conv.activation());
      add_conv_params(step, desc);
    } else if (op == OpId::conv_transpose2d) {
      const auto& conv = dynamic_cast<const ConvTranspose2dOp&>(*step.op);
      desc.kind = mobile::StepKind::kConvTranspose2d;
      desc.conv = conv_desc(conv.geometry(input), conv.activation());
      add_conv_params(step, desc);
    } else if (op == OpId::dense) {
      desc.kind = mobile::StepKind::kDense;
      const std::vector<float>& weight = param(step.params.at(0));
      desc.weight = append(weight.data(), weight.size());
      if (step.params.size() > 1) {
        const std::vector<float>& bias = param(step.params[1]);
        desc.bias = append(bias.data(), bias.size());
      }
    } else if (op == OpId::add) {
      desc.kind = mobile::StepKind::kAdd;
    } else if (op == OpId::global_avg_pool) {
      desc.kind = mobile::StepKind::kGlobalAvgPool;
    } else if (op == OpId::relu) {
      desc.kind = mobile::StepKind::kRelu;
    } else if (op == OpId::relu6) {
      desc.kind = mobile::StepKind::kRelu6;
    } else if (op == OpId::sigmoid) {
      desc.kind = mobile::StepKind::kSigmoid;
    } else {
      unsupported(step,
                  "has no mobile kernel (the mobile runtime runs conv2d, "
                  "conv_transpose2d, dense, add, global_avg_pool, relu, relu6, sigmoid, and "
                  "batch norms folded into a convolution)");
    }
    return desc;
  }

  Model& model_;
  const Program& program_;
  mobile::Artifact artifact_;
};

}  // namespace

mobile::Artifact lower_to_mobile(const GraphFile& file, const SafetensorsFile& weights,
                                 const std::string& weights_source) {
  Model model(file, 0, Backend::kReference);
  model.params().load_tensors(weights, weights_source);
  const Program& program = model.executor(1, Mode::kEval).program();
  mobile::Artifact artifact = Lowering(model, program).run();
  for (const char* key : {"input_size", "norm_mean", "norm_std", "threshold"}) {
    const auto it = weights.metadata.find(key);
    if (it != weights.metadata.end()) artifact.metadata[key] = it->second;
  }
  mobile::validate(artifact);
  return artifact;
}

}  // namespace emt
