#include "algo/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Core>

#include "util/blas.h"
#include "util/error.h"

namespace lowbit {

namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void check_group(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens,
                 const char* where) {
  check(!linears.empty(), where, "no Linear in the group");
  check(n_in > 0 && n_tokens > 0 && X != nullptr, where, "no calibration inputs ({} tokens x {})", n_tokens, n_in);
  for (const AwqLinear& l : linears) check(l.weight != nullptr && l.n_out > 0, where, "empty Linear in the group");
}

// Q(W diag(s)) diag(s)^-1 for one Linear: what the scaled, quantized layer computes on the unscaled input.
std::vector<float> scaled_pseudo_quantized(const AwqLinear& l, int64_t n_in, const std::vector<float>& s,
                                           const IntQuantConfig& cfg) {
  std::vector<float> w(l.weight, l.weight + l.n_out * n_in);
  scale_input_columns(w.data(), l.n_out, n_in, s.data());
  std::vector<float> wq = awq_pseudo_quantize(w.data(), l.n_out, n_in, cfg).dequantize();
  for (int64_t o = 0; o < l.n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) wq[o * n_in + i] /= s[i];
  return wq;
}

}  // namespace

ScaleZero awq_scale_zero(const float* x, int64_t n, int bits, bool sym) {
  if (sym) {
    float amax = 0.f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    const int half = 1 << (bits - 1);
    return {std::max(amax, 1e-5f) / static_cast<float>(half - 1), static_cast<float>(half)};
  }
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float maxq = static_cast<float>((1 << bits) - 1);
  ScaleZero p{std::max(hi - lo, 1e-5f) / maxq, 0.f};
  p.zero = std::clamp(-std::nearbyint(lo / p.scale), 0.f, maxq);
  return p;
}

QuantizedLinear awq_pseudo_quantize(const float* W, int64_t n_out, int64_t n_in, const IntQuantConfig& cfg) {
  cfg.validate("awq_pseudo_quantize");
  check(n_out > 0 && n_in > 0, "awq_pseudo_quantize", "empty layer {}x{}", n_out, n_in);
  QuantizedLinear ql = QuantizedLinear::allocate(n_out, n_in, cfg);
  const int64_t gl = cfg.group_len(n_in), ng = ql.n_groups();
  const int maxq = cfg.maxq();
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < n_out; ++o) {
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t i0 = g * gl, i1 = std::min(n_in, i0 + gl);
      const ScaleZero p = awq_scale_zero(W + o * n_in + i0, i1 - i0, cfg.bits, cfg.sym);
      ql.scales[g * n_out + o] = p.scale;
      ql.zeros[g * n_out + o] = p.zero;
      for (int64_t i = i0; i < i1; ++i) ql.q[o * n_in + i] = static_cast<uint8_t>(quantize_value(W[o * n_in + i], p, maxq));
    }
  }
  return ql;
}

AwqLossFn awq_concat_output_loss(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens) {
  check_group(linears, n_in, X, n_tokens, "awq_concat_output_loss");
  std::vector<std::vector<float>> reference;
  for (const AwqLinear& l : linears) reference.push_back(linear_forward(X, n_tokens, l.weight, l.n_out, n_in));
  return [reference = std::move(reference), X, n_tokens, n_in](const std::vector<std::vector<float>>& cand) {
    check(cand.size() == reference.size(), "awq loss", "{} candidate weights for {} Linears", cand.size(),
          reference.size());
    double sum = 0;
    size_t count = 0;
    for (size_t k = 0; k < cand.size(); ++k) {
      const int64_t n_out = static_cast<int64_t>(reference[k].size()) / n_tokens;
      const std::vector<float> y = linear_forward(X, n_tokens, cand[k].data(), n_out, n_in);
      for (size_t e = 0; e < y.size(); ++e) {
        const double d = static_cast<double>(reference[k][e]) - y[e];
        sum += d * d;
      }
      count += y.size();
    }
    return sum / static_cast<double>(count);
  };
}

AwqScaleResult awq_search_scales(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens,
                                 const AwqOptions& options, const AwqLossFn& loss) {
  const char* where = "awq_search_scales";
  check_group(linears, n_in, X, n_tokens, where);
  options.quant.validate(where);
  check(options.n_grid > 0, where, "n_grid must be positive");
  const AwqLossFn loss_fn = loss ? loss : awq_concat_output_loss(linears, n_in, X, n_tokens);

  // Per-channel mean |x| (summed in double, in token order).
  std::vector<double> x_mean(static_cast<size_t>(n_in), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < n_in; ++i) x_mean[i] += std::fabs(X[t * n_in + i]);
  for (auto& v : x_mean) v /= static_cast<double>(n_tokens);
  // Per-channel mean over all rows of |w| relative to the max |w| of its quantization group.
  const int64_t gl = options.quant.group_len(n_in);
  std::vector<double> w_mean(static_cast<size_t>(n_in), 0.0);
  int64_t rows = 0;
  for (const AwqLinear& l : linears) {
    for (int64_t o = 0; o < l.n_out; ++o) {
      const float* row = l.weight + o * n_in;
      for (int64_t i0 = 0; i0 < n_in; i0 += gl) {
        const int64_t i1 = std::min(n_in, i0 + gl);
        float amax = 0.f;
        for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(row[i]));
        for (int64_t i = i0; i < i1; ++i) w_mean[i] += std::fabs(row[i]) / (amax + 1e-6);
      }
    }
    rows += l.n_out;
  }
  for (auto& v : w_mean) v /= static_cast<double>(rows);

  AwqScaleResult result;
  result.best_loss = std::numeric_limits<double>::infinity();
  result.best_ratio = -1;
  std::vector<float> s(static_cast<size_t>(n_in));
  for (int r = 0; r < options.n_grid; ++r) {
    const double ratio = static_cast<double>(r) / options.n_grid;
    double smax = 0, smin = std::numeric_limits<double>::infinity();
    std::vector<double> sd(static_cast<size_t>(n_in));
    for (int64_t i = 0; i < n_in; ++i) {
      double v = std::pow(x_mean[i], ratio);
      if (options.duo_scaling) v /= std::pow(w_mean[i], 1.0 - ratio) + 1e-4;
      sd[i] = std::max(v, 1e-4);
      smax = std::max(smax, sd[i]);
      smin = std::min(smin, sd[i]);
    }
    const double norm = std::sqrt(smax * smin);
    for (int64_t i = 0; i < n_in; ++i) {
      const float v = static_cast<float>(sd[i] / norm);
      s[i] = std::isfinite(v) && v > 0.f ? v : 1.f;
    }
    std::vector<std::vector<float>> cand;
    for (const AwqLinear& l : linears) cand.push_back(scaled_pseudo_quantized(l, n_in, s, options.quant));
    const double value = loss_fn(cand);
    result.history.push_back(value);
    if (value < result.best_loss) {
      result.best_loss = value;
      result.best_ratio = ratio;
      result.scales = s;
    }
  }
  check(result.best_ratio >= 0, where, "no finite loss for any ratio (non-finite weights or inputs?)");
  return result;
}

std::vector<float> awq_search_clip(const float* W, int64_t n_out, int64_t n_in, const float* X, int64_t n_tokens,
                                   const AwqOptions& options) {
  const char* where = "awq_search_clip";
  options.quant.validate(where);
  check(n_out > 0 && n_in > 0 && n_tokens > 0, where, "empty shapes");
  const int64_t gl = options.quant.group_len(n_in);
  check(n_in % gl == 0, where, "n_in {} is not a multiple of the group length {}", n_in, gl);
  const int64_t ng = n_in / gl;
  const int64_t step = std::max<int64_t>(1, n_tokens / std::max<int64_t>(1, options.clip_n_sample_tokens));
  std::vector<int64_t> tokens;
  for (int64_t t = 0; t < n_tokens; t += step) tokens.push_back(t);
  const int n_shrink = std::max(1, static_cast<int>(options.clip_max_shrink * options.clip_n_grid));
  const int maxq = options.quant.maxq();
  const int64_t n_sampled = static_cast<int64_t>(tokens.size());
  std::vector<float> best(static_cast<size_t>(n_out * ng));
  const SingleThreadedBlas one_thread;
  for (int64_t g = 0; g < ng; ++g) {
    MatF xg(n_sampled, gl);  // the sampled tokens' inputs of this group
    for (int64_t t = 0; t < n_sampled; ++t)
      for (int64_t i = 0; i < gl; ++i) xg(t, i) = X[tokens[t] * n_in + g * gl + i];
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t o = 0; o < n_out; ++o) {
      const float* w = W + o * n_in + g * gl;
      float org_max = 0.f;
      for (int64_t i = 0; i < gl; ++i) org_max = std::max(org_max, std::fabs(w[i]));
      // Column k: quantized-minus-original weights of the group clamped to org_max * (1 - k / n_grid).
      MatF delta(gl, n_shrink);
      std::vector<float> cur(static_cast<size_t>(gl)), max_vals(static_cast<size_t>(n_shrink));
      for (int k = 0; k < n_shrink; ++k) {
        max_vals[k] = org_max * (1.f - static_cast<float>(k) / static_cast<float>(options.clip_n_grid));
        for (int64_t i = 0; i < gl; ++i) cur[i] = std::clamp(w[i], -max_vals[k], max_vals[k]);
        const ScaleZero p = awq_scale_zero(cur.data(), gl, options.quant.bits, options.quant.sym);
        for (int64_t i = 0; i < gl; ++i) delta(i, k) = dequantize_value(quantize_value(cur[i], p, maxq), p) - w[i];
      }
      // Partial output errors of every sampled token for every shrink: one sgemm on this thread's BLAS.
      MatF out_err(n_sampled, n_shrink);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(n_sampled),
                  static_cast<blasint>(n_shrink), static_cast<blasint>(gl), 1.f, xg.data(), static_cast<blasint>(gl),
                  delta.data(), static_cast<blasint>(n_shrink), 0.f, out_err.data(), static_cast<blasint>(n_shrink));
      float best_max = org_max;
      double min_err = 1e9;  // as the reference: a shrink is kept only below this
      for (int k = 0; k < n_shrink; ++k) {
        const double err = out_err.col(k).cast<double>().squaredNorm() / static_cast<double>(n_sampled);
        if (err < min_err) {
          min_err = err;
          best_max = max_vals[k];
        }
      }
      best[o * ng + g] = best_max;
    }
  }
  return best;
}

void awq_apply_clip(float* W, int64_t n_out, int64_t n_in, int64_t group_len, const std::vector<float>& max_val) {
  check(group_len > 0 && n_in % group_len == 0, "awq_apply_clip", "bad group length {}", group_len);
  const int64_t ng = n_in / group_len;
  check(max_val.size() == static_cast<size_t>(n_out * ng), "awq_apply_clip", "{} clip values for {}x{} groups",
        max_val.size(), n_out, ng);
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) {
      const float m = max_val[o * ng + i / group_len];
      W[o * n_in + i] = std::clamp(W[o * n_in + i], -m, m);
    }
}

void scale_input_columns(float* W, int64_t n_out, int64_t n_in, const float* s) {
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t i = 0; i < n_in; ++i) W[o * n_in + i] *= s[i];
}

void fold_scales_into_norm(float* norm_weight, float* norm_bias, int64_t n, const float* s) {
  for (int64_t i = 0; i < n; ++i) {
    norm_weight[i] /= s[i];
    if (norm_bias) norm_bias[i] /= s[i];
  }
}

void fold_scales_into_linear_rows(float* prev_weight, float* prev_bias, int64_t n, int64_t n_in_prev, const float* s) {
  for (int64_t o = 0; o < n; ++o) {
    for (int64_t i = 0; i < n_in_prev; ++i) prev_weight[o * n_in_prev + i] /= s[o];
    if (prev_bias) prev_bias[o] /= s[o];
  }
}

AwqGroupResult awq_quantize_group(std::span<const AwqLinear> linears, int64_t n_in, const float* X, int64_t n_tokens,
                                  const AwqOptions& options, const AwqLossFn& loss) {
  AwqGroupResult result;
  result.scale = awq_search_scales(linears, n_in, X, n_tokens, options, loss);
  const std::vector<float>& s = result.scale.scales;
  std::vector<float> xs(X, X + n_tokens * n_in);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < n_in; ++i) xs[t * n_in + i] /= s[i];
  for (const AwqLinear& l : linears) {
    std::vector<float> w(l.weight, l.weight + l.n_out * n_in);
    scale_input_columns(w.data(), l.n_out, n_in, s.data());
    if (options.clip) {
      result.clip_max.push_back(awq_search_clip(w.data(), l.n_out, n_in, xs.data(), n_tokens, options));
      awq_apply_clip(w.data(), l.n_out, n_in, options.quant.group_len(n_in), result.clip_max.back());
    }
    result.layers.push_back(awq_pseudo_quantize(w.data(), l.n_out, n_in, options.quant));
  }
  return result;
}

}  // namespace lowbit
