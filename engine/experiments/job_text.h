// Text the experiment pipelines share: numbers in their tables, the paths their job.json
// records, and progress lines.
#pragma once

#include <filesystem>
#include <string>

#include "engine/experiments/job.h"
#include "engine/io/format_number.h"

namespace emt {

// A CSV field: fixed six decimals, "nan" for an undefined metric.
std::string csv_number(double v);

// A path as a job.json records it: absolute and normalised, so "graphs/x.toml" and
// "./graphs/x.toml" name the same job.
std::string job_path(const std::filesystem::path& path);

// One line to JobOptions::console, if any.
void say(const JobOptions& options, const std::string& line);

}  // namespace emt
