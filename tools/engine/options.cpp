#include "tools/engine/options.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace emt::cli {
namespace {

std::string quoted(const std::string& text) { return "'" + text + "'"; }

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A check whose description stays out of the help's type column (the help texts say it).
CLI::Validator check(std::function<std::string(const std::string&)> message_for) {
  return CLI::Validator([message_for](std::string& text) { return message_for(text); }, "");
}

// A check that the text parses, with the parser's message when it does not.
template <typename T>
CLI::Validator parses_as(T (*parse)(const std::string&)) {
  return check([parse](const std::string& text) -> std::string {
    try {
      parse(text);
      return "";
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  });
}

template <typename T>
CLI::Option* add_parsed(CLI::App& app, const std::string& name, T& target,
                        T (*parse)(const std::string&), const std::string& help) {
  return app
      .add_option_function<std::string>(
          name, [&target, parse](const std::string& text) { target = parse(text); }, help)
      ->check(parses_as(parse));
}

}  // namespace

CLI::Option* add_graph(CLI::App& app, std::string& path) {
  return app.add_option("GRAPH", path, "the graph file")->type_name("TOML")->required();
}

void add_settings(CLI::App& app, std::vector<std::string>& sets) {
  // Triggered as each is parsed, so --set and --data keep the command line's order.
  app.add_option_function<std::string>(
         "--set", [&sets](const std::string& set) { sets.push_back(set); },
         "override a setting of the graph file, e.g. --set train.epochs=3 (repeatable; keys: "
         "data.*, train.*, augment.*, eval.*, output.*, objective.*)")
      ->type_name("KEY=VALUE")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option_function<std::string>(
         "--data", [&sets](const std::string& path) { sets.push_back("data.source=" + path); },
         "the dataset: a BUSI-layout folder or a CSV manifest (image,label,mask[,group]); same as "
         "--set data.source=PATH (default: the generated phantom). Images are checked from their "
         "headers and skipped undecoded above data.max_image_pixels (w x h), "
         "data.max_padded_pixels (max(w, h)^2; both 67108864) or data.max_bytes_per_pixel (8)")
      ->type_name("PATH")
      ->trigger_on_parse()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

CLI::Option* add_backend(CLI::App& app, Backend& backend) {
  return add_parsed(app, "--backend", backend, &parse_backend,
                    "kernels: \"reference\" (plain loops, the ground truth) or \"onednn\" (oneDNN "
                    "variants where an op has one, the reference elsewhere). Default: onednn")
      ->type_name("NAME");
}

CLI::Option* add_precision(CLI::App& app, Precision& precision, const std::string& help,
                           Precision (*parse)(const std::string&)) {
  return add_parsed(app, "--precision", precision, parse, help)->type_name("P");
}

CLI::Option* add_verbose_dispatch(CLI::App& app, bool& verbose_dispatch) {
  return app
      .add_option_function<std::string>(
          "--verbose", [&verbose_dispatch](const std::string&) { verbose_dispatch = true; },
          "--verbose=dispatch: print, for each op, which implementation runs and why others "
          "did not")
      ->type_name("dispatch")
      ->check(one_of({"dispatch"}));
}

CLI::Option* add_quiet(CLI::App& app, bool& quiet) {
  return app.add_flag("--quiet", quiet, "no progress output");
}

CLI::Option* add_threshold(CLI::App& app, std::optional<double>& threshold) {
  return app
      .add_option_function<double>(
          "--threshold", [&threshold](double t) { threshold = t; },
          "malignant iff probability >= T (default: the weights' threshold)")
      ->type_name("T")
      ->check(number_in(0, 1, false));
}

const char* const kInferencePrecisionHelp =
    "fp32 (default) or bf16: inference with the activations between oneDNN convolutions in "
    "bf16 (AVX512-BF16 / AMX; refused with the reason on a CPU without them)";

CLI::Validator positive_integer() {
  return check([](const std::string& text) -> std::string {
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    return !text.empty() && !*end && v > 0 && v <= INT32_MAX
               ? ""
               : "expects a positive integer, got " + quoted(text);
  });
}

CLI::Validator number_in(double lo, double hi, bool open_lo) {
  return check([=](const std::string& text) -> std::string {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (!text.empty() && !*end && v <= hi && v >= lo && !(open_lo && v == lo)) return "";
    return "expects a number in " + std::string(open_lo ? "(" : "[") + number_text(lo) + ", " +
           number_text(hi) + "], got " + quoted(text);
  });
}

CLI::Validator one_of(const std::vector<std::string>& words) {
  return check([words](const std::string& text) -> std::string {
    std::string list;
    for (size_t i = 0; i < words.size(); ++i) {
      if (words[i] == text) return "";
      list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
    }
    return "expects " + list + ", got " + quoted(text);
  });
}

CLI::Validator positive_numbers() {
  return check([](const std::string& text) -> std::string {
    try {
      parse_numbers(text);
      return "";
    } catch (const std::invalid_argument&) {
      return "expects positive numbers separated by commas, got " + quoted(text);
    }
  });
}

std::vector<double> parse_numbers(const std::string& text) {
  std::vector<double> values;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end || !(v > 0)) throw std::invalid_argument(item);
    values.push_back(v);
  }
  if (values.empty()) throw std::invalid_argument(text);
  return values;
}

void refuse(const std::string& message) { throw CLI::ValidationError(message); }

std::string wrap(const std::string& text, size_t width) {
  std::string out, paragraph;
  std::istringstream paragraphs(text);
  while (std::getline(paragraphs, paragraph)) {
    std::istringstream words(paragraph);
    std::string word, line;
    while (words >> word) {
      if (!line.empty() && line.size() + 1 + word.size() > width) {
        out += line + "\n";
        line.clear();
      }
      line += (line.empty() ? "" : " ") + word;
    }
    out += line + "\n";
  }
  if (!out.empty()) out.pop_back();  // CLI11 ends the text itself
  return out;
}

}  // namespace emt::cli
