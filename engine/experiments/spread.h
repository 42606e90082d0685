// How much a metric varies across the runs of an experiment (folds, seeds): mean, sample
// standard deviation and the 95% Student t interval of the mean.
#pragma once

#include <span>

namespace emt {

// t_{0.975, df}: the two-sided 95% quantile of Student's t with df >= 1 degrees of freedom.
// Tabulated to df = 30, then the Cornish-Fisher expansion in 1/df (error below 1e-5 there).
// Throws std::invalid_argument for df < 1.
double t_quantile_975(int df);

struct Spread {
  int n = 0;          // finite values used (an undefined metric of one run is left out)
  double mean = 0;    // NaN when n = 0
  double sd = 0;      // sample sd (n - 1); NaN when n < 2
  double ci_low = 0;  // mean -+ t_{0.975, n-1} sd / sqrt(n); NaN when n < 2
  double ci_high = 0;
};
Spread spread(std::span<const double> values);

}  // namespace emt
