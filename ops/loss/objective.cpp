#include <string>

#include "ops/core/op_error.h"
#include "ops/loss/loss.h"

namespace emt {

namespace {

std::span<const float> values(const Tensor& t) {
  return {t.data, static_cast<size_t>(t.numel())};
}

std::string describe(const LossTerm& term, size_t index) {
  return "objective term " + std::to_string(index) + " (" + loss_kind_name(term.kind) + " '" +
         term.input + "' vs '" + term.target + "')";
}

}  // namespace

const char* loss_kind_name(LossKind kind) {
  switch (kind) {
    case LossKind::kWeightedBce:
      return "weighted_bce";
    case LossKind::kDice:
      return "dice";
  }
  return "unknown";
}

ObjectiveValue evaluate_objective(const Objective& objective,
                                  std::span<const TermBinding> bindings) {
  if (bindings.size() != objective.terms.size()) {
    throw OpError("objective has " + std::to_string(objective.terms.size()) + " terms but " +
                  std::to_string(bindings.size()) + " bindings");
  }
  ObjectiveValue result;
  result.terms.reserve(bindings.size());
  for (size_t i = 0; i < bindings.size(); ++i) {
    const LossTerm& term = objective.terms[i];
    const TermBinding& b = bindings[i];
    if (b.input.empty() || b.target.empty()) {
      throw OpError(describe(term, i) + ": input or target has no data");
    }
    // Element counts, not shapes, must agree: a [N,1] logit column against [N] labels is fine.
    if (b.input.numel() != b.target.numel()) {
      throw OpError(describe(term, i) + ": input " + shape_str(b.input.shape) + " and target " +
                    shape_str(b.target.shape) + " differ in size");
    }
    std::span<float> grad;
    if (!b.grad_input.empty()) {
      if (b.grad_input.numel() != b.input.numel()) {
        throw OpError(describe(term, i) + ": gradient " + shape_str(b.grad_input.shape) +
                      " does not match input " + shape_str(b.input.shape));
      }
      grad = {b.grad_input.data, static_cast<size_t>(b.grad_input.numel())};
    }
    if (term.kind == LossKind::kDice && b.input.rank() == 0) {
      throw OpError(describe(term, i) + ": input " + shape_str(b.input.shape) +
                    " has no batch dimension");
    }
    double value = 0.0;
    try {
      switch (term.kind) {
        case LossKind::kWeightedBce:
          value = weighted_bce_with_logits(values(b.input), values(b.target), term.pos_weight, grad,
                                           term.weight);
          break;
        case LossKind::kDice:
          value = soft_dice_loss(values(b.input), values(b.target), b.input.dim(0), term.eps, grad,
                                 term.weight);
          break;
      }
    } catch (const OpError& e) {
      // The loss functions see spans only; the term name tells the user which graph line to fix.
      throw OpError(describe(term, i) + ": " + e.what());
    }
    result.terms.push_back(value);
    result.total += term.weight * value;
  }
  return result;
}

}  // namespace emt
