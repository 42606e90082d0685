// THE loss of EMT-Net (docs/PAPER.md, "Loss"): L = W_c * L_wbce + L_dice. Training, evaluation
// and the mobile runtime all call these functions, so there is exactly one definition to trust.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ops/core/tensor.h"

namespace emt {

// Mean over all M elements of the weighted binary cross-entropy on logits z, targets y in [0,1]:
//   L = (1/M) sum[(1 - y) z + K log(1 + e^{-z})],  K = 1 + y (pos_weight - 1),
// which equals -(1/M) sum[pos_weight y log sigma(z) + (1 - y) log(1 - sigma(z))]. It is taken
// from the logits, never from a clamped probability, and stays exact for |z| up to float max.
// If grad is non-empty it ACCUMULATES scale * dL/dz (+=). Throws OpError on size mismatch.
double weighted_bce_with_logits(std::span<const float> logits, std::span<const float> targets,
                                double pos_weight, std::span<float> grad = {}, double scale = 1.0);

// Soft Dice loss averaged over the batch. Each sample is numel / batch contiguous elements and
// contributes 1 - (2 sum(y p) + eps) / (sum y + sum p + eps). eps must be > 0; see dice.cpp for
// why 1 is the default. If grad is non-empty it ACCUMULATES scale * dL/dp (+=).
double soft_dice_loss(std::span<const float> probs, std::span<const float> targets, int64_t batch,
                      double eps = 1.0, std::span<float> grad = {}, double scale = 1.0);

enum class LossKind { kWeightedBce, kDice };

// "weighted_bce" / "dice": the spelling used by graph files and error messages.
const char* loss_kind_name(LossKind kind);

struct LossTerm {
  LossKind kind = LossKind::kWeightedBce;
  std::string input;   // tensor name: logits for kWeightedBce, probabilities for kDice
  std::string target;  // tensor name: labels or mask, same element count as input
  double weight = 1.0;
  double pos_weight = 1.0;  // kWeightedBce only
  double eps = 1.0;         // kDice only
};

struct Objective {
  std::vector<LossTerm> terms;
};

// The tensors of one term, in the order of Objective::terms. For kDice the batch is dim 0.
struct TermBinding {
  Tensor input;
  Tensor target;
  Tensor grad_input;  // null data: no gradient wanted
};

struct ObjectiveValue {
  double total = 0;
  std::vector<double> terms;  // unweighted value of each term
};

// total = sum weight_i * term_i; ACCUMULATES weight_i * dterm_i/dinput into each grad_input.
// Throws OpError naming the term and both shapes when sizes or the binding count disagree.
ObjectiveValue evaluate_objective(const Objective& objective,
                                  std::span<const TermBinding> bindings);

}  // namespace emt
