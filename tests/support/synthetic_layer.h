// Synthetic linear layers and correlated calibration inputs for the quantization algorithm tests.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::testing {

// n values from N(0, sigma^2), reproducible from the seed.
std::vector<float> gaussian(int64_t n, float sigma, uint32_t seed);

// Correlated activations X = Z A, Z [n_tokens][n_in] standard normal, A [n_in][n_in] = I + N(0, 1/n_in) mixing.
std::vector<float> correlated_inputs(int64_t n_tokens, int64_t n_in, uint32_t seed);

// Multiplies input column j of X [n_tokens][n_in] by factor.
void scale_column(std::vector<float>& x, int64_t n_in, int64_t j, float factor);

}  // namespace lowbit::testing
