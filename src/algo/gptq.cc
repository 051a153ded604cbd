#include "algo/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.h"

namespace lowbit {

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kMaxInputs = int64_t{1} << 17;  // H has n_in^2 doubles; anything larger is a corrupt shape
// Rows of W processed together. Fixed, so results never depend on the thread count: each chunk's products run
// single-threaded (Eigen does not parallelise inside an OpenMP region) with the same shapes every time.
constexpr int64_t kRowChunk = 16;

// Upper Cholesky factor of (H + damp I)^-1, as torch.linalg.cholesky(torch.cholesky_inverse(
// torch.linalg.cholesky(H)), upper=True). False if either factorisation fails. Factorises in place to keep the
// peak at about three n x n double matrices (n can be tens of thousands).
bool inverse_upper_factor(const MatD& h, double damp, MatF& out) {
  MatD work = h;
  work.diagonal().array() += damp;
  Eigen::LLT<Eigen::Ref<MatD>> llt(work);
  if (llt.info() != Eigen::Success) return false;
  MatD hinv = MatD::Identity(h.rows(), h.cols());
  llt.solveInPlace(hinv);
  work.resize(0, 0);
  Eigen::LLT<Eigen::Ref<MatD>> llt2(hinv);
  if (llt2.info() != Eigen::Success) return false;
  out = llt2.matrixU().toDenseMatrix().cast<float>();  // hinv's lower triangle holds L; U = L^T
  return out.allFinite() && (out.diagonal().array() > 0.f).all();
}

}  // namespace

HessianAccumulator::HessianAccumulator(int64_t n_in) : n_in_(n_in) {
  check(n_in > 0 && n_in <= kMaxInputs, "HessianAccumulator", "bad input size {}", n_in);
  h_.assign(static_cast<size_t>(n_in * n_in), 0.0);
}

void HessianAccumulator::add_batch(const float* x, int64_t n_tokens, int64_t n_samples) {
  check(n_tokens >= 0, "HessianAccumulator::add_batch", "negative token count {}", n_tokens);
  if (n_tokens == 0) return;
  const int64_t m = n_samples < 0 ? n_tokens : n_samples;
  check(m > 0, "HessianAccumulator::add_batch", "a batch must count for at least one sample");
  const int64_t n = n_in_;
  Eigen::Map<MatD> h(h_.data(), n, n);
  h *= static_cast<double>(n_samples_) / static_cast<double>(n_samples_ + m);
  n_samples_ += m;
  const double s2 = 2.0 / static_cast<double>(n_samples_);
  const MatD xd = Eigen::Map<const MatF>(x, n_tokens, n).cast<double>();
  constexpr int64_t kColChunk = 64;
  const int64_t n_chunks = (n + kColChunk - 1) / kColChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t c0 = c * kColChunk, w = std::min(n, c0 + kColChunk) - c0;
    h.middleCols(c0, w).noalias() += s2 * (xd.transpose() * xd.middleCols(c0, w));
  }
}

HessianAccumulator HessianAccumulator::from_matrix(int64_t n_in, std::vector<double> h, int64_t n_samples) {
  HessianAccumulator acc(n_in);
  check(h.size() == acc.h_.size(), "HessianAccumulator::from_matrix", "matrix has {} values, want {}^2", h.size(),
        n_in);
  acc.h_ = std::move(h);
  acc.n_samples_ = n_samples;
  return acc;
}

GptqResult gptq_quantize(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                         const IntQuantConfig& cfg, const GptqOptions& options) {
  const char* where = "gptq_quantize";
  cfg.validate(where);
  check(n_out > 0 && n_in > 0, where, "empty layer {}x{}", n_out, n_in);
  check(hessian.n_in() == n_in, where, "Hessian is for {} inputs, layer has {}", hessian.n_in(), n_in);
  check(options.block_size > 0, where, "block_size must be positive, got {}", options.block_size);
  check(options.damp_percent >= 0 && options.damp_auto_increment >= 0, where, "damping must not be negative");
  const int64_t n = n_in;
  const Eigen::Map<const MatD> h(hessian.matrix().data(), n, n);
  check(h.allFinite(), where, "Hessian has non-finite values");
  std::vector<double> diag(static_cast<size_t>(n));

  GptqResult result;
  std::vector<float> wf(W, W + n_out * n);
  for (int64_t i = 0; i < n; ++i) {
    diag[i] = h(i, i);
    if (diag[i] != 0.0) continue;
    diag[i] = 1.0;
    for (int64_t r = 0; r < n_out; ++r) wf[r * n + i] = 0.f;
    ++result.dead_columns;
  }

  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (cfg.desc_act) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  }
  MatD hp(n, n);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) hp(a, b) = a == b ? diag[perm[a]] : h(perm[a], perm[b]);

  MatF u;
  const double mean_diag = hp.diagonal().mean();
  double dp = options.damp_percent;
  while (!inverse_upper_factor(hp, dp * mean_diag, u)) {
    check(options.damp_auto_increment > 0 && dp + options.damp_auto_increment < 1.0, where,
          "Hessian is not positive definite even with damp_percent {:.4f}", dp);
    dp += options.damp_auto_increment;
  }
  result.damp_percent = dp;

  const bool grouped = cfg.group_size > 0;
  const int64_t gl = cfg.group_len(n), ng = (n + gl - 1) / gl;
  const bool static_groups = grouped && cfg.static_groups;
  const int maxq = cfg.maxq();
  result.layer = QuantizedLinear::allocate(n_out, n, cfg);
  QuantizedLinear& ql = result.layer;
  for (int64_t j = 0; j < n; ++j) {
    // Static groups (and no act-order) keep the original column order; dynamic groups follow the processing order.
    if (static_groups || !cfg.desc_act) ql.g_idx[j] = static_cast<int32_t>(j / gl);
    else ql.g_idx[perm[j]] = static_cast<int32_t>(j / gl);
  }
  auto store = [&](int64_t g, int64_t row, ScaleZero p) {
    ql.scales[g * n_out + row] = p.scale;
    ql.zeros[g * n_out + row] = p.zero;
  };

  const int64_t block = options.block_size;
  const int64_t n_chunks = (n_out + kRowChunk - 1) / kRowChunk;
  std::vector<double> row_loss(static_cast<size_t>(n_out), 0.0);
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t r0 = c * kRowChunk, rows = std::min(n_out, r0 + kRowChunk) - r0;
    MatF wc(rows, n);  // this chunk's rows, columns in processing order
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) wc(r, j) = wf[(r0 + r) * n + perm[j]];
    std::vector<ScaleZero> cur(static_cast<size_t>(rows));
    if (static_groups) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < ng; ++g) {
          const int64_t j0 = g * gl, len = std::min(n, j0 + gl) - j0;
          store(g, r0 + r, find_scale_zero(&wf[(r0 + r) * n + j0], len, cfg.bits, cfg.sym, cfg.mse));
        }
    } else if (!grouped) {
      for (int64_t r = 0; r < rows; ++r) {
        cur[r] = find_scale_zero(&wf[(r0 + r) * n], n, cfg.bits, cfg.sym, cfg.mse);
        store(0, r0 + r, cur[r]);
      }
    }
    for (int64_t i1 = 0; i1 < n; i1 += block) {
      const int64_t i2 = std::min(n, i1 + block), count = i2 - i1;
      MatF w1 = wc.middleCols(i1, count);
      MatF err1(rows, count);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t col = i1 + i;
        const float d = u(col, col);
        if (grouped && !static_groups && col % gl == 0) {
          for (int64_t r = 0; r < rows; ++r) {
            cur[r] = find_scale_zero(&wc(r, col), std::min(gl, n - col), cfg.bits, cfg.sym, cfg.mse);
            store(col / gl, r0 + r, cur[r]);
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          ScaleZero p = cur[r];
          if (static_groups) {
            const int64_t gi = (perm[col] / gl) * n_out + r0 + r;
            p = {ql.scales[gi], ql.zeros[gi]};
          }
          const float w = w1(r, i);
          const int qv = quantize_value(w, p, maxq);
          ql.q[(r0 + r) * n + perm[col]] = static_cast<uint8_t>(qv);
          const float diff = w - dequantize_value(qv, p);
          row_loss[r0 + r] += static_cast<double>(diff) * diff / (static_cast<double>(d) * d) / 2.0;
          const float e = diff / d;
          err1(r, i) = e;
          w1.row(r).tail(count - i) -= e * u.row(col).segment(col, count - i);
        }
      }
      if (i2 < n) wc.rightCols(n - i2).noalias() -= err1 * u.block(i1, i2, count, n - i2);
    }
  }
  for (double l : row_loss) result.loss += l;
  return result;
}

double reconstruction_error(const float* W, const float* Wq, int64_t n_out, int64_t n_in, const float* X,
                            int64_t n_tokens) {
  check(n_out > 0 && n_in > 0 && n_tokens > 0, "reconstruction_error", "empty shapes");
  const std::vector<float> y = linear_forward(X, n_tokens, W, n_out, n_in);
  const std::vector<float> yq = linear_forward(X, n_tokens, Wq, n_out, n_in);
  double num = 0, den = 0;
  for (size_t k = 0; k < y.size(); ++k) {
    const double d = static_cast<double>(y[k]) - yq[k];
    num += d * d;
    den += static_cast<double>(y[k]) * y[k];
  }
  return den > 0 ? num / den : 0.0;
}

}  // namespace lowbit
