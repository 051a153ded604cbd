// ggml's scale searches for block quantization (ggml-quants.c), re-implemented with the same floating-point
// operations in the same order, so that a block quantized here is byte-identical to one quantized by ggml.
// One deliberate difference, taken from later ggml (llama.cpp PR 15379): make_qp_quants / make_q3_quants return 0
// where c392e50 divides 0 by 0 (every weight zero, e.g. an imatrix range of unused columns) and so writes NaN
// scales. Every other finite input gives c392e50's bytes.
//
// Every function works on one small group of `n` values; float stays float (no double accumulators), sums run
// front to back, and products associate left to right exactly as in ggml. Do not "simplify" an expression here:
// (w*x)*l and w*(x*l) round differently and change the chosen levels.
//
// Naming follows ggml so the two can be read side by side:
//   levels  - the integer level chosen for each value (ggml's L)
//   weights - per-value importance of the squared error (ggml's quant_weights / weights); null where allowed
#pragma once

#include <bit>
#include <cstdint>

namespace lowbit {

// Below this a group's largest magnitude counts as zero (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, the way ggml does it: adding 1.5*2^23 pushes the integer part into the low
// mantissa bits. Only valid for |v| <= 4194303 (callers guarantee it for finite inputs); outside that range the
// result is meaningless, as in ggml.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  const int32_t bits = std::bit_cast<int32_t>(shifted);
  return (bits & 0x007fffff) - 0x00400000;
}

// The value with the largest magnitude in x[0..n), sign kept (the first one wins ties); 0 for an empty group.
// Symmetric quantizers map this value to level -nmax so the sign of the scale follows it.
struct SignedAbsMax {
  float value;  // x[i] with the largest |x[i]|
  float abs;    // |value|
};
SignedAbsMax signed_abs_max(const float* x, int n);

// Symmetric quantization to levels in [-nmax, nmax-1], stored offset by +nmax (so in [0, 2*nmax)); returns the
// scale d with x ~ d*(level - nmax). rmse_type selects the error weight when `weights` is null:
// 0 = plain rounding (no search), 1 = x^2, 2 = 1, 3 = |x|, else sqrt|x|; a negative rmse_type does one
// refinement step and returns early (ggml's quick mode). With `weights`, those weights are used instead.
float make_qx_quants(int n, int nmax, const float* x, int8_t* levels, int rmse_type, const float* weights);

// Q3_K's symmetric search without weights: levels in [-nmax, nmax-1] offset by +nmax. With do_rmse it refines
// single levels with x^2 weights for up to 5 passes; otherwise it is plain rounding.
float make_q3_quants(int n, int nmax, const float* x, int8_t* levels, bool do_rmse);

// Asymmetric (scale + min) search for levels in [0, nmax]: x ~ scale*level - min_out. Tries nstep+1 inverse scales
// (rmin + rdelta*is + nmax)/(max - min) and keeps the least weighted error, |e| when use_mad else e^2.
// `weights` is required; `scratch` holds n bytes. Returns the scale; *min_out receives -min (>= 0).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* min_out,
                       uint8_t* scratch, float rmin, float rdelta, int nstep, bool use_mad);

// As make_qkx2_quants, but `weights` may be null (then x^2 is used).
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* levels, float* min_out,
                       uint8_t* scratch, float rmin, float rdelta, int nstep, bool use_mad);

// Quantizes non-negative values (super-block scales or mins) to levels in [0, nmax] with weighted least squares:
// a coarse search over 9 inverse scales, then up to 5 passes moving single levels. `weights` is required.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* levels, const float* weights);

// ---- Batched forms (quant_search_batch.cc) ----
// The same searches on n_groups independent groups of n values (n <= kMaxSearchGroup), stored one after another
// (group g at x + g*n, its weights at weights + g*n, its levels at levels + g*n, its scale at scales[g]). They run
// one group per SIMD lane with exactly the scalar functions' float operations, so each group's result is
// bit-identical to calling the scalar function on it; they are only faster.
inline constexpr int kMaxSearchGroup = 32;

// make_qkx3_quants (and make_qkx2_quants, whose weights are never null) per group; neg_mins[g] gets *min_out.
void make_qkx_quants_batch(int64_t n_groups, int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                           float* scales, float* neg_mins, float rmin, float rdelta, int nstep, bool use_mad);
// make_qx_quants with rmse_type 1 (x^2 weights when `weights` is null) per group.
void make_qx_quants_batch(int64_t n_groups, int n, int nmax, const float* x, const float* weights, int8_t* levels,
                          float* scales);
// make_q3_quants with do_rmse per group.
void make_q3_quants_batch(int64_t n_groups, int n, int nmax, const float* x, int8_t* levels, float* scales);

}  // namespace lowbit
