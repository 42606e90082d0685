#include "mobile/runtime.h"

#include <algorithm>
#include <stdexcept>

#include "ops/add/add_neon.h"
#include "ops/conv2d/conv2d_neon.h"
#include "ops/conv_transpose2d/conv_transpose2d_neon.h"
#include "ops/dense/dense_neon.h"
#include "ops/global_avg_pool/global_avg_pool_neon.h"
#include "ops/relu/relu_neon.h"
#include "ops/relu6/relu6_neon.h"
#include "ops/sigmoid/sigmoid_neon.h"

namespace emt::mobile {
namespace {

ConvActivation conv_activation(Activation a) {
  switch (a) {
    case Activation::kRelu:
      return ConvActivation::kRelu;
    case Activation::kRelu6:
      return ConvActivation::kRelu6;
    case Activation::kNone:
      break;
  }
  return ConvActivation::kNone;
}

ConvGeometry geometry(const ConvDesc& c, int64_t batch) {
  ConvGeometry g;
  g.n = batch;
  g.cin = c.cin;
  g.h = c.h;
  g.w = c.w;
  g.cout = c.cout;
  g.ho = c.ho;
  g.wo = c.wo;
  g.kernel = c.kernel;
  g.stride = c.stride;
  g.groups = c.groups;
  g.set_padding({c.pad_top, c.pad_left, c.pad_bottom, c.pad_right});
  return g;
}

// First-fit placement by liveness: a value lives from the step that writes it (the image: from
// the start) to the last step that reads it, or to the end when it is an output or a loss input.
std::vector<int64_t> place_values(const Artifact& a, int64_t batch, int64_t& arena_floats) {
  const size_t n = a.values.size();
  const auto steps = static_cast<int64_t>(a.steps.size());
  std::vector<int64_t> first(n, -2), last(n, -2);
  first[a.image] = last[a.image] = -1;
  for (int64_t s = 0; s < steps; ++s) {
    const StepDesc& step = a.steps[static_cast<size_t>(s)];
    for (uint32_t v : step.inputs) last[v] = std::max(last[v], s);
    first[step.output] = last[step.output] = s;
  }
  for (const auto& [name, v] : a.outputs) last[v] = steps;
  for (const LossTermDesc& t : a.objective) last[t.input] = steps;
  std::vector<int64_t> offsets(n, 0);
  struct Placed {
    int64_t begin, end, first, last;
  };
  std::vector<Placed> placed;
  arena_floats = 0;
  for (size_t v = 0; v < n; ++v) {
    if (first[v] == -2) continue;  // never written: no room needed
    const int64_t size = static_cast<int64_t>(a.values[v].size()) * batch;
    // Candidate offsets: 0 and the end of every placed value alive at the same time; the lowest
    // that overlaps none of them wins.
    std::vector<int64_t> candidates{0};
    for (const Placed& p : placed)
      if (p.first <= last[v] && first[v] <= p.last) candidates.push_back(p.end);
    std::sort(candidates.begin(), candidates.end());
    for (const int64_t offset : candidates) {
      const bool fits = std::none_of(placed.begin(), placed.end(), [&](const Placed& p) {
        return p.first <= last[v] && first[v] <= p.last && offset < p.end &&
               p.begin < offset + size;
      });
      if (!fits) continue;
      offsets[v] = offset;
      placed.push_back({offset, offset + size, first[v], last[v]});
      arena_floats = std::max(arena_floats, offset + size);
      break;
    }
  }
  return offsets;
}

// Tasks per thread for a channel split: a few more tasks than threads keep a thread that was
// slowed down (a busy core) from holding up the others.
constexpr int64_t kChunksPerThread = 2;

// Channels per chunk: about channels / (threads * kChunksPerThread), rounded up to a multiple
// of 8 (the pointwise kernel's row tile), at most channels.
int64_t channel_chunk(int64_t channels, int threads) {
  const int64_t parts = int64_t{threads} * kChunksPerThread;
  const int64_t chunk = ((channels + parts - 1) / parts + 7) / 8 * 8;
  return std::min(chunk, std::max<int64_t>(channels, 1));
}

bool is_depthwise(const ConvDesc& c) {
  return c.groups > 1 && c.groups == c.cin && c.groups == c.cout;
}

}  // namespace

Runtime::Runtime(Artifact artifact, int64_t max_batch, int threads)
    : artifact_(std::move(artifact)), max_batch_(max_batch) {
  validate(artifact_);
  if (max_batch < 1) throw std::invalid_argument("mobile runtime: max_batch must be >= 1");
  if (threads < 1) throw std::invalid_argument("mobile runtime: threads must be >= 1");
  int64_t floats = 0;
  offsets_ = place_values(artifact_, max_batch_, floats);
  arena_.assign(static_cast<size_t>(floats), 0.0f);
  if (threads == 1) return;
  splits_.resize(artifact_.steps.size());
  for (size_t s = 0; s < artifact_.steps.size(); ++s) {
    const StepDesc& step = artifact_.steps[s];
    const ConvDesc& c = step.conv;
    Split& split = splits_[s];
    if (step.kind == StepKind::kConv2d && (c.groups == 1 || is_depthwise(c))) {
      split.chunk = channel_chunk(c.cout, threads);
    } else if (step.kind == StepKind::kConvTranspose2d && c.groups == 1) {
      // conv2d-terms weight [cout, cin, k, k]; the output channels are cin. Chunk j's block is
      // [cout, chunk_j, k, k], so that conv_transpose2d_neon reads it as a weight with cin =
      // chunk_j (its filters at s * chunk_j * k^2 + d * k^2 for source s, destination d).
      split.chunk = channel_chunk(c.cin, threads);
      split.packed_offset = packed_.size();
      const int64_t kk = int64_t{c.kernel} * c.kernel;
      const float* weight = artifact_.weights.data() + step.weight.offset;
      for (int64_t first = 0; first < c.cin; first += split.chunk) {
        const int64_t size = std::min<int64_t>(split.chunk, c.cin - first);
        for (int64_t src = 0; src < c.cout; ++src) {
          const float* from = weight + (src * c.cin + first) * kk;
          packed_.insert(packed_.end(), from, from + size * kk);
        }
      }
    } else {
      continue;
    }
    split.chunks =
        (int64_t{step.kind == StepKind::kConv2d ? c.cout : c.cin} + split.chunk - 1) / split.chunk;
  }
  pool_ = std::make_unique<ThreadPool>(threads);
}

void Runtime::run(std::span<const float> images, int64_t batch) {
  const ValueDesc& image = artifact_.values[artifact_.image];
  if (batch < 1 || batch > max_batch_)
    throw std::invalid_argument("mobile runtime: batch " + std::to_string(batch) + " outside [1, " +
                                std::to_string(max_batch_) + "]");
  if (images.size() != image.size() * static_cast<uint64_t>(batch))
    throw std::invalid_argument("mobile runtime: " + std::to_string(images.size()) +
                                " floats are not " + std::to_string(batch) + " images of " +
                                std::to_string(image.channels) + "x" +
                                std::to_string(image.height) + "x" + std::to_string(image.width));
  std::copy(images.begin(), images.end(), value_data(artifact_.image));
  if (pool_) {
    for (size_t s = 0; s < artifact_.steps.size(); ++s) run_step_split(s, batch);
  } else {
    for (const StepDesc& step : artifact_.steps) run_step(step, batch);
  }
  batch_ = batch;
}

void Runtime::run_step(const StepDesc& step, int64_t batch) {
  const float* in = value_data(step.inputs[0]);
  float* out = value_data(step.output);
  const float* weight = artifact_.weights.data() + step.weight.offset;
  const float* bias = step.bias.count ? artifact_.weights.data() + step.bias.offset : nullptr;
  const ValueDesc& in_desc = artifact_.values[step.inputs[0]];
  const ValueDesc& out_desc = artifact_.values[step.output];
  const auto count = static_cast<int64_t>(out_desc.size()) * batch;
  switch (step.kind) {
    case StepKind::kConv2d:
      conv2d_neon(geometry(step.conv, batch), in, weight, bias,
                  conv_activation(step.conv.activation), out);
      break;
    case StepKind::kConvTranspose2d:
      conv_transpose2d_neon(geometry(step.conv, batch), in, weight, bias,
                            conv_activation(step.conv.activation), out);
      break;
    case StepKind::kAdd:
      add_neon(in, value_data(step.inputs[1]), count, out);
      break;
    case StepKind::kGlobalAvgPool:
      global_avg_pool_neon(in, batch, in_desc.channels, int64_t{in_desc.height} * in_desc.width,
                           out);
      break;
    case StepKind::kDense:
      dense_neon(in, weight, bias, batch, in_desc.channels, out_desc.channels, out);
      break;
    case StepKind::kRelu:
      relu_neon(in, count, out);
      break;
    case StepKind::kRelu6:
      relu6_neon(in, count, out);
      break;
    case StepKind::kSigmoid:
      sigmoid_neon(in, count, out);
      break;
  }
}

// The step as run_step computes it, split over the pool (see Split and runtime.h): each output
// element is still computed by the same kernel call arithmetic, only on a slice of the channels
// or of the images or elements.
void Runtime::run_step_split(size_t index, int64_t batch) {
  const StepDesc& step = artifact_.steps[index];
  const Split& split = splits_[index];
  const float* in = value_data(step.inputs[0]);
  float* out = value_data(step.output);
  const float* weight = artifact_.weights.data() + step.weight.offset;
  const float* bias = step.bias.count ? artifact_.weights.data() + step.bias.offset : nullptr;
  const auto in_size = static_cast<int64_t>(artifact_.values[step.inputs[0]].size());
  const auto out_size = static_cast<int64_t>(artifact_.values[step.output].size());
  const ConvDesc& c = step.conv;
  const ConvActivation act = conv_activation(c.activation);
  const int64_t kk = int64_t{c.kernel} * c.kernel;
  switch (step.kind) {
    case StepKind::kConv2d:
      if (split.chunk == 0) {  // a grouped convolution: by images
        pool_->run(batch, [&](int64_t n) {
          conv2d_neon(geometry(c, 1), in + n * in_size, weight, bias, act, out + n * out_size);
        });
      } else {
        const bool depthwise = is_depthwise(c);
        const int64_t in_plane = int64_t{c.h} * c.w, out_plane = int64_t{c.ho} * c.wo;
        pool_->run(batch * split.chunks, [&](int64_t task) {
          const int64_t n = task / split.chunks, first = task % split.chunks * split.chunk;
          ConvGeometry g = geometry(c, 1);
          g.cout = std::min(split.chunk, g.cout - first);
          const float* x = in + n * in_size;
          const float* w = weight + first * g.cin * kk;
          if (depthwise) {
            g.cin = g.groups = g.cout;
            x += first * in_plane;
            w = weight + first * kk;
          }
          conv2d_neon(g, x, w, bias ? bias + first : nullptr, act,
                      out + n * out_size + first * out_plane);
        });
      }
      break;
    case StepKind::kConvTranspose2d:
      if (split.chunk == 0) {
        pool_->run(batch, [&](int64_t n) {
          conv_transpose2d_neon(geometry(c, 1), in + n * in_size, weight, bias, act,
                                out + n * out_size);
        });
      } else {
        const int64_t out_plane = int64_t{c.h} * c.w;
        pool_->run(batch * split.chunks, [&](int64_t task) {
          const int64_t n = task / split.chunks, first = task % split.chunks * split.chunk;
          ConvGeometry g = geometry(c, 1);
          g.cin = std::min(split.chunk, g.cin - first);
          conv_transpose2d_neon(
              g, in + n * in_size, packed_.data() + split.packed_offset + first * g.cout * kk,
              bias ? bias + first : nullptr, act, out + n * out_size + first * out_plane);
        });
      }
      break;
    case StepKind::kAdd:
    case StepKind::kRelu:
    case StepKind::kRelu6:
    case StepKind::kSigmoid: {
      // Ranges of a multiple of 16 floats; the kernels' four-lane loop (and its zero-padded tail)
      // gives every element the same arithmetic wherever a range starts.
      const int64_t count = out_size * batch, parts = pool_->threads();
      const int64_t range = std::max<int64_t>(16, ((count + parts - 1) / parts + 15) / 16 * 16);
      const float* other = step.kind == StepKind::kAdd ? value_data(step.inputs[1]) : nullptr;
      const StepKind kind = step.kind;
      pool_->run((count + range - 1) / range, [&](int64_t part) {
        const int64_t first = part * range, size = std::min(range, count - first);
        switch (kind) {
          case StepKind::kAdd:
            add_neon(in + first, other + first, size, out + first);
            break;
          case StepKind::kRelu:
            relu_neon(in + first, size, out + first);
            break;
          case StepKind::kRelu6:
            relu6_neon(in + first, size, out + first);
            break;
          default:
            sigmoid_neon(in + first, size, out + first);
        }
      });
      break;
    }
    case StepKind::kGlobalAvgPool:
    case StepKind::kDense:
      run_step(step, batch);  // tiny: on the calling thread
      break;
  }
}

std::span<const float> Runtime::output(const std::string& name) const {
  const auto it = artifact_.outputs.find(name);
  if (it == artifact_.outputs.end())
    throw std::out_of_range("mobile runtime: the model has no output '" + name + "'");
  return {value_data(it->second), artifact_.values[it->second].size() * batch_};
}

ObjectiveValue Runtime::objective(std::span<const std::span<const float>> targets) const {
  if (targets.size() != artifact_.targets.size())
    throw std::invalid_argument("mobile runtime: " + std::to_string(targets.size()) +
                                " targets given, the objective reads " +
                                std::to_string(artifact_.targets.size()));
  const auto shape = [&](const ValueDesc& v) {
    return Shape{batch_, v.channels, v.height, v.width};
  };
  Objective objective;
  std::vector<TermBinding> bindings;
  for (const LossTermDesc& t : artifact_.objective) {
    const ValueDesc& input = artifact_.values[t.input];
    const ValueDesc& target = artifact_.targets[t.target];
    if (targets[t.target].size() != target.size() * batch_)
      throw std::invalid_argument("mobile runtime: target '" + target.name + "' has " +
                                  std::to_string(targets[t.target].size()) + " values, not " +
                                  std::to_string(batch_) + " x " + std::to_string(target.size()));
    objective.terms.push_back({t.kind, input.name, target.name, t.weight, t.pos_weight, t.eps});
    // The loss reads but never writes these; Tensor's pointer is not const.
    bindings.push_back({{const_cast<float*>(value_data(t.input)), shape(input)},
                        {const_cast<float*>(targets[t.target].data()), shape(target)},
                        {}});
  }
  return evaluate_objective(objective, bindings);
}

}  // namespace emt::mobile
