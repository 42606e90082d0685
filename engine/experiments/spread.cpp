#include "engine/experiments/spread.h"

#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace emt {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// t_{0.975, df} for df = 1 .. 30 (standard tables, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
constexpr std::array<double, 30> kT975 = {
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157,  2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816,  2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539,  2.055529, 2.051831, 2.048407, 2.045230, 2.042272};

constexpr double kZ975 = 1.959963984540054;  // the normal quantile the expansion starts from

}  // namespace

double t_quantile_975(int df) {
  if (df < 1)
    throw std::invalid_argument("t_quantile_975: degrees of freedom must be >= 1, got " +
                                std::to_string(df));
  if (df <= static_cast<int>(kT975.size())) return kT975[static_cast<size_t>(df - 1)];
  // Cornish-Fisher: t = z + g1/v + g2/v^2 + g3/v^3 (Abramowitz & Stegun 26.7.5).
  const double z = kZ975, z2 = z * z, v = df;
  const double g1 = (z2 + 1) * z / 4;
  const double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
  const double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v);
}

Spread spread(std::span<const double> values) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  Spread s;
  s.n = static_cast<int>(v.size());
  s.mean = s.sd = s.ci_low = s.ci_high = kNaN;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  const double half = t_quantile_975(s.n - 1) * s.sd / std::sqrt(static_cast<double>(s.n));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

}  // namespace emt
