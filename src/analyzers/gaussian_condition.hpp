#pragma once

// Conditioning a multivariate normal on some of its coordinates (prediction difference analysis's
// conditional sampling).

#include <Eigen/Dense>
#include <vector>

namespace sieve::analyzers {

// x ~ N(mean, covariance) split into the coordinates `window` and `given`: the law of x_window given
// x_given is N(mean_window + gain · (x_given − mean_given), factor · factorᵀ).
struct GaussianCondition {
  Eigen::VectorXd mean_window, mean_given;
  Eigen::MatrixXd gain, factor;
};
// gain = Σ_wg Σ_gg⁻¹ and factor · factorᵀ = Σ_ww − gain Σ_gw (clipped to positive semi-definite). Σ_gg
// gets `ridge` on its diagonal, so that constant coordinates (a data set's always-black border) do not
// make it singular.
GaussianCondition condition_gaussian(const Eigen::VectorXd& mean, const Eigen::MatrixXd& covariance,
                                     const std::vector<Eigen::Index>& window,
                                     const std::vector<Eigen::Index>& given, double ridge);

}  // namespace sieve::analyzers
