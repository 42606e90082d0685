// The oneDNN backend runs the same graph as the reference backend: EMT-Net's forward outputs,
// its objective and every parameter gradient of one training step agree within float32
// reordering error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "engine/dsl/parser.h"
#include "engine/runtime/model.h"
#include "engine/runtime/threading.h"

namespace emt {
namespace {

std::string graph_path(const char* name) {
  const char* root = std::getenv("EMT_SOURCE_DIR");
  return std::string(root ? root : ".") + "/graphs/" + name;
}

void fill_inputs(Executor& exec, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(-2.0f, 2.0f);
  std::bernoulli_distribution coin(0.4);
  Tensor image = exec.value("image");
  for (int64_t i = 0; i < image.numel(); ++i) image.data[i] = pixel(rng);
  for (const GraphInput& t : exec.program().graph->targets) {
    Tensor target = exec.value(t.name);
    for (int64_t i = 0; i < target.numel(); ++i) target.data[i] = coin(rng) ? 1.0f : 0.0f;
  }
}

// Largest |a - b| / (scale + |b|) over two buffers: relative where values are large, absolute
// (over `scale`) near zero, where cancellation makes relative error meaningless.
double max_rel_err(const float* a, const float* b, int64_t n, double scale) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i)
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / (scale + std::abs(double(b[i]))));
  return worst;
}

// ||a - b|| / ||b||: the error of the tensor as a whole, insensitive to the few elements near
// zero that carry the rounding of the large ones they were summed with.
double l2_norm(const std::vector<float>& a) {
  double norm = 0;
  for (float x : a) norm += double(x) * x;
  return std::sqrt(norm);
}

// ||a - b|| / scale, with the norm of b as the scale by default.
double rel_l2_err(const std::vector<float>& a, const std::vector<float>& b, double scale = 0) {
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(diff) / std::max({scale, l2_norm(b), 1e-30});
}

// The scale a gradient's float32 rounding is relative to. A batch norm whose output reaches
// another batch norm through a convolution and a ReLU is scale-invariant in gamma: its gamma
// gradient, sum(dy * x_hat), cancels to ~1e-5 of its terms (measured 7e-4 against a beta
// gradient of 44 at the stem), so summation order alone moves it by percents. Its terms have
// the magnitude of the beta gradient's, sum(dy), which is the scale used for it.
double gradient_scale(const ParamStore& store, const std::string& name) {
  const std::string suffix = ".gamma";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix))
    return 0;
  const std::string beta = name.substr(0, name.size() - suffix.size()) + ".beta";
  return l2_norm(store.at(beta).grad);
}

class BackendEquivalence : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { init_threading(2); }
};

TEST_P(BackendEquivalence, ForwardAndOneTrainingStepMatchTheReference) {
  // 64x64 keeps 2x2 maps (8+ values per channel) at the deepest batch norms: with fewer, batch
  // statistics are so ill-conditioned that float32 reordering noise is amplified past any
  // useful tolerance, in either backend.
  const GraphFile file = parse_graph_file(graph_path(GetParam()), {"data.input_size=64"});
  Model ref(file, 5, Backend::kReference);
  Model fast(file, 5, Backend::kOnednn);
  constexpr int64_t kBatch = 4;

  // Inference: eval-mode outputs (running statistics moved away from their defaults first).
  for (Model* m : {&ref, &fast}) {
    Executor& train = m->executor(kBatch, Mode::kTrain);
    fill_inputs(train, 11);
    train.forward(7);
  }
  for (const GraphOutput& out : file.graph.outputs) {
    Executor& a = fast.executor(kBatch, Mode::kEval);
    Executor& b = ref.executor(kBatch, Mode::kEval);
    fill_inputs(a, 12);
    fill_inputs(b, 12);
    a.forward();
    b.forward();
    const Tensor x = a.value(a.program().outputs.at(out.name));
    const Tensor y = b.value(b.program().outputs.at(out.name));
    // Probabilities in [0, 1] after ~30 layers of float32 sums in different orders.
    EXPECT_LT(max_rel_err(x.data, y.data, x.numel(), 1.0), 1e-4) << out.name;
  }

  // Training: the objective and every parameter gradient of one step. Backward through batch
  // statistics is ill-conditioned at random initialisation: the reference itself moves its
  // gradients by up to a few percent when the input moves by a few ulps. So each gradient of
  // the oneDNN backend must sit within a small multiple of that self-sensitivity (measured on
  // the same step), which still fails by orders of magnitude for a wrong kernel (O(1) errors).
  Model jittered(file, 5, Backend::kReference);
  std::vector<Executor*> execs;
  for (Model* m : {&fast, &ref, &jittered}) {
    m->params().zero_grads();
    execs.push_back(&m->executor(kBatch, Mode::kTrain));
    fill_inputs(*execs.back(), 13);
  }
  Tensor image = execs[2]->value("image");
  for (int64_t i = 0; i < image.numel(); ++i) image.data[i] *= 1.0f + 1e-6f * float(i % 3 - 1);
  std::vector<ObjectiveValue> losses;
  for (Executor* e : execs) {
    e->forward(3);
    losses.push_back(e->backward());
  }
  EXPECT_NEAR(losses[0].total, losses[1].total, 1e-4 * std::abs(losses[1].total));
  for (const std::string& name : ref.params().names()) {
    const ParamEntry& want = ref.params().at(name);
    if (want.grad.empty()) continue;
    const double scale = gradient_scale(ref.params(), name);
    const double noise = rel_l2_err(jittered.params().at(name).grad, want.grad, scale);
    EXPECT_LT(rel_l2_err(fast.params().at(name).grad, want.grad, scale), 5 * noise + 1e-4)
        << name << " (reference self-sensitivity " << noise << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, BackendEquivalence,
                         ::testing::Values("emtnet.toml", "single_clf.toml", "single_sgm.toml"));

}  // namespace
}  // namespace emt
