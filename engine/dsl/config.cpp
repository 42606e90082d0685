#include "engine/dsl/config.h"

#include <charconv>
#include <sstream>
#include <stdexcept>

#include "engine/io/image_limits.h"
#include "engine/ir/graph.h"

namespace emt {
namespace {

AttrValue i(int64_t v) { return AttrValue{v}; }
AttrValue f(double v) { return AttrValue{v}; }
AttrValue s(const char* v) { return AttrValue{std::string(v)}; }

const char* type_of(const AttrValue& v) {
  if (std::holds_alternative<int64_t>(v)) return "integer";
  if (std::holds_alternative<double>(v)) return "float";
  if (std::holds_alternative<bool>(v)) return "boolean";
  return "string";
}

std::string known_keys_in(const std::string& section) {
  std::string list;
  for (const ConfigKeySpec& spec : config_schema())
    if (spec.key.rfind(section + ".", 0) == 0) list += (list.empty() ? "" : ", ") + spec.key;
  return list;
}

const SourceLoc kCommandLine{"<command line --set>", 0, 0};

const ConfigKeySpec& spec_of(const std::string& key) {
  for (const ConfigKeySpec& spec : config_schema())
    if (spec.key == key) return spec;
  throw std::logic_error("config key not in schema: " + key);
}

}  // namespace

const std::vector<ConfigKeySpec>& config_schema() {
  static const std::vector<ConfigKeySpec> schema = {
      {"data.source", s("phantom"),
       "\"phantom\" (generated), a BUSI-layout folder, or a CSV manifest "
       "(image,label,mask[,group])"},
      {"data.include_normal", AttrValue{false}, "BUSI / manifest: keep normal images, as benign"},
      {"data.strict", AttrValue{false}, "stop at the first bad image instead of skipping it"},
      {"data.max_image_pixels", i(ImageLimits{}.max_pixels),
       "images with more pixels (width x height, read from the file header) are skipped as bad "
       "files without being decoded",
       1},
      {"data.max_padded_pixels", i(ImageLimits{}.max_padded_pixels),
       "images whose padded square (max(width, height)^2) has more pixels are skipped undecoded",
       1},
      {"data.max_bytes_per_pixel", i(ImageLimits{}.max_bytes_per_pixel),
       "images decoding to more bytes per pixel (channels x bytes per channel; 16-bit RGBA is "
       "8) are skipped undecoded",
       1},
      {"data.dedup_threshold", f(0.95),
       "images whose 48x48 signatures correlate above this share a split group"},
      {"data.count", i(2000), "phantom images generated"},
      {"data.seed", i(42), "phantom generation and split seed"},
      {"data.input_size", i(64), "network input side in pixels (square)", 1},
      {"data.train_fraction", f(0.7), "stratified split: training share"},
      {"data.val_fraction", f(0.15), "stratified split: validation share (the rest is test)"},
      {"data.folds", i(0),
       "cross-validation: cut the data into this many stratified parts of whole groups and use "
       "fold data.fold instead of the train/val fractions (0: the plain split)"},
      {"data.fold", i(0),
       "cross-validation fold, 0 .. data.folds - 1: test on part data.fold, validate on the next "
       "part, train on the rest (the paper's 4 x 75/12.5/12.5 is data.folds = 8, folds 0, 2, 4, "
       "6)"},
      {"data.norm_mean", f(0.5), "pixel/255 is normalised as (x - mean) / std"},
      {"data.norm_std", f(0.25), "see data.norm_mean"},
      {"data.phantom_min_side", i(160), "shortest phantom image side"},
      {"data.phantom_max_side", i(320), "longest phantom image side"},
      {"train.epochs", i(10), "passes over the training split"},
      {"train.batch", i(16), "images per optimizer step"},
      {"train.optimizer", s("adam"), "\"adam\" (decoupled weight decay) or \"sgd\" (momentum)"},
      {"train.lr", f(2e-3), "peak learning rate"},
      {"train.momentum", f(0.9), "SGD momentum"},
      {"train.weight_decay", f(1e-4), "applied to conv and dense weights only"},
      {"train.schedule", s("cosine"), "\"constant\", \"cosine\" or \"step\""},
      {"train.warmup_steps", i(20), "linear warm-up steps"},
      {"train.seed", i(1), "weight initialisation, dropout and shuffling seed"},
      {"train.init_weights", s(""),
       "safetensors file (e.g. from `engine import-tflite`) whose tensors replace the "
       "initialisation before training, only those it holds; empty: none"},
      {"train.patience", i(0),
       "early stopping: stop after this many epochs without a better validation score (0: run "
       "every epoch)"},
      {"train.prefetch_batches", i(2),
       "batches decoded and augmented ahead of the one training, in parallel with it"},
      {"train.ema_decay", f(0.0),
       "validate, save and test the exponential moving average of the weights (and batch-norm "
       "statistics) over optimizer steps with this decay, e.g. 0.99 (0: the weights as they "
       "are)"},
      {"train.bn_calibration_images", i(64),
       "with train.init_weights: training images whose activations set the imported batch "
       "norms' statistics and affine terms, so that they start as the identity the file's "
       "folded weights assume (0: keep the file's values)"},
      {"eval.threshold", f(0.5), "malignant iff probability >= threshold"},
      {"eval.target_sensitivity", f(0.0),
       "engine run: choose the threshold on the validation split as the one reaching this "
       "sensitivity, store it with the weights and score test at it (0: eval.threshold)"},
      {"eval.calibrate", AttrValue{false},
       "engine run: fit a temperature to the classifier on the validation split and fold it "
       "into the logit layer of the saved weights (temperature scaling), before the operating "
       "point is chosen; metrics.json reports the validation ECE before and after"},
      {"eval.batch", i(32), "images per evaluation forward pass"},
      {"eval.flip_tta", AttrValue{false},
       "evaluation also runs each image mirrored left-right and averages: the classifier's "
       "probabilities, and the mask probabilities after mirroring back"},
      {"eval.largest_region", AttrValue{false},
       "each predicted mask keeps only its largest connected region (one lesion per view): "
       "smaller detached regions are cleared before scoring and drawing"},
      {"output.dir", s(""), "run directory; empty means runs/<graph>-<timestamp>"},
      {"objective.w_p", f(1.5), "positive-class weight of the weighted BCE (W_p)"},
      {"objective.w_c", f(3.0), "weight of the classification loss (W_c)"},
      {"augment.enabled", AttrValue{true}, "augment training images (evaluation never does)"},
      {"augment.flip_h", f(0.5), "probability of a left-right mirror"},
      {"augment.rotate_deg", f(10.0), "max |rotation| in degrees about the centre"},
      {"augment.scale", f(0.1), "max zoom: factor drawn log-uniformly in [1/(1+s), 1+s]"},
      {"augment.translate", f(0.05), "max shift per axis, as a fraction of the image side"},
      {"augment.brightness", f(0.1), "max |offset| added to the [0,1] intensity"},
      {"augment.contrast", f(0.1), "max contrast change: factor in [1/(1+c), 1+c] about the mean"},
      {"augment.gamma", f(0.1), "max gamma change: exponent in [1/(1+g), 1+g]"},
      {"augment.speckle", f(0.05), "max std of the multiplicative speckle noise"},
      // Limits bound what a file can make the engine allocate; only --set raises them, so that
      // a file cannot lift its own.
      {"limits.max_graph_nodes", i(1'000'000), "nodes a graph may expand to, block uses included",
       1},
      {"limits.max_block_depth", i(64), "blocks used inside blocks: the deepest chain", 1},
      {"limits.max_tensor_elements", i(TensorLimits{}.max_tensor_elements),
       "elements of any one activation or parameter tensor, batch included", 1},
      {"limits.max_arena_bytes", i(TensorLimits{}.max_arena_bytes),
       "bytes of the activation arena a plan may need", 1},
  };
  return schema;
}

bool is_config_section(const std::string& section) {
  return section == "data" || section == "train" || section == "eval" || section == "output" ||
         section == "objective" || section == "augment" || section == "limits";
}

Config::Config() {
  for (const ConfigKeySpec& spec : config_schema())
    entries_[spec.key] = {spec.default_value, {"<default>", 0, 0}};
}

const Config::Entry& Config::entry(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw std::logic_error("config key not in schema: " + key);
  return it->second;
}

void Config::set(const std::string& key, const AttrValue& value, const SourceLoc& loc) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    const std::string section = key.substr(0, key.find('.'));
    throw GraphError(loc, "unknown setting '" + key + "'" +
                              (is_config_section(section)
                                   ? " (known in [" + section + "]: " + known_keys_in(section) + ")"
                                   : ""));
  }
  if (key.rfind("limits.", 0) == 0 && loc.file != kCommandLine.file)
    throw GraphError(loc, "setting '" + key + "' can only be raised on the command line (--set " +
                              key + "=...), so that a file cannot lift its own limits");
  AttrValue converted = value;
  const AttrValue& expected = it->second.value;
  if (std::holds_alternative<double>(expected) && std::holds_alternative<int64_t>(value))
    converted = static_cast<double>(std::get<int64_t>(value));
  if (converted.index() != expected.index())
    throw GraphError(loc, "setting '" + key + "' must be " + type_of(expected) + ", got " +
                              type_of(value) + " " + attr_value_str(value));
  if (const auto* v = std::get_if<int64_t>(&converted); v && *v < spec_of(key).min_int)
    throw GraphError(loc, "setting '" + key + "' must be at least " +
                              std::to_string(spec_of(key).min_int) + ", got " + std::to_string(*v));
  it->second = {converted, loc};
}

void Config::set_from_assignment(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw GraphError(kCommandLine, "expected key=value, got '" + assignment + "'");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  auto it = entries_.find(key);
  if (it == entries_.end())
    set(key, AttrValue{text}, kCommandLine);  // throws the unknown-key error

  const AttrValue& expected = it->second.value;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto fail = [&]() {
    throw GraphError(kCommandLine,
                     "setting '" + key + "' must be " + type_of(expected) + ", got '" + text + "'");
  };
  if (std::holds_alternative<int64_t>(expected)) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || end != last) fail();
    set(key, AttrValue{v}, kCommandLine);
  } else if (std::holds_alternative<double>(expected)) {
    double v = 0;
    auto [end, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || end != last) fail();
    set(key, AttrValue{v}, kCommandLine);
  } else if (std::holds_alternative<bool>(expected)) {
    if (text != "true" && text != "false") fail();
    set(key, AttrValue{text == "true"}, kCommandLine);
  } else {
    set(key, AttrValue{text}, kCommandLine);
  }
}

const AttrValue& Config::get(const std::string& key) const { return entry(key).value; }
int64_t Config::get_int(const std::string& key) const { return std::get<int64_t>(get(key)); }
double Config::get_float(const std::string& key) const { return std::get<double>(get(key)); }
bool Config::get_bool(const std::string& key) const { return std::get<bool>(get(key)); }
const std::string& Config::get_string(const std::string& key) const {
  return std::get<std::string>(get(key));
}
const SourceLoc& Config::where(const std::string& key) const { return entry(key).loc; }

std::string Config::to_toml() const {
  std::ostringstream out;
  std::string section;
  for (const ConfigKeySpec& spec : config_schema()) {
    const std::string sec = spec.key.substr(0, spec.key.find('.'));
    if (sec != section) {
      out << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    const Entry& e = entry(spec.key);
    out << spec.key.substr(sec.size() + 1) << " = " << attr_value_str(e.value) << "  # from "
        << e.loc.str() << "\n";
  }
  return out.str();
}

}  // namespace emt
