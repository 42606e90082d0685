// Options more than one command takes, and the checks of option values. A value check returns
// a message naming what was expected and what was given; CLI11 prefixes the option's name.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/compiler/program.h"

namespace emt::cli {

// GRAPH, the graph file (a required positional argument).
CLI::Option* add_graph(CLI::App& app, std::string& path);
// --set KEY=VALUE (repeatable) and --data PATH (= --set data.source=PATH), appended to sets in
// the order given.
void add_settings(CLI::App& app, std::vector<std::string>& sets);
CLI::Option* add_backend(CLI::App& app, Backend& backend);
CLI::Option* add_precision(CLI::App& app, Precision& precision, const std::string& help,
                           Precision (*parse)(const std::string&) = &parse_precision);
CLI::Option* add_verbose_dispatch(CLI::App& app, bool& verbose_dispatch);
CLI::Option* add_quiet(CLI::App& app, bool& quiet);
// --threshold T in [0, 1] (eval, predict).
CLI::Option* add_threshold(CLI::App& app, std::optional<double>& threshold);
// The message of every inference command's --precision.
extern const char* const kInferencePrecisionHelp;

CLI::Validator positive_integer();
// A number in [lo, hi]; lo itself is refused when open_lo.
CLI::Validator number_in(double lo, double hi, bool open_lo);
// One of the given words.
CLI::Validator one_of(const std::vector<std::string>& words);
// Positive numbers separated by commas, e.g. "1,2.5,4".
CLI::Validator positive_numbers();
std::vector<double> parse_numbers(const std::string& text);

// A command line that parsed but cannot run as asked (exit status 2).
[[noreturn]] void refuse(const std::string& message);

// text re-flowed into lines of at most width characters (a longer word stands alone); blank
// lines separate paragraphs.
std::string wrap(const std::string& text, size_t width);

}  // namespace emt::cli
