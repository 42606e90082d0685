#include "engine/experiments/job_text.h"

#include <cmath>
#include <ostream>

namespace emt {

std::string csv_number(double v) { return std::isfinite(v) ? format_number("%.6f", v) : "nan"; }

std::string job_path(const std::filesystem::path& path) {
  return std::filesystem::weakly_canonical(std::filesystem::absolute(path)).string();
}

void say(const JobOptions& options, const std::string& line) {
  if (options.console) *options.console << line << "\n" << std::flush;
}

}  // namespace emt
