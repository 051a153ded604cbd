#include "algo/gptq.h"

#include <Eigen/Core>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <string>

#include "util/blas.h"
#include "util/error.h"

namespace lowbit {

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kMaxInputs = int64_t{1} << 17;  // H has n_in^2 doubles; anything larger is a corrupt shape
// Rows of W processed together. Fixed, so results never depend on the thread count: each chunk's products run
// on one BLAS thread with the same shapes every time.
constexpr int64_t kRowChunk = 16;

// Upper Cholesky factor of (H + damp I)^-1, as torch.linalg.cholesky(torch.cholesky_inverse(
// torch.linalg.cholesky(H)), upper=True). False if either factorisation fails. LAPACK's potrf / potri / potrf in
// place on one n x n double matrix (n can be tens of thousands), on one BLAS thread so that the factor does not
// depend on the thread count.
bool inverse_upper_factor(const MatD& h, double damp, MatF& out) {
  const lapack_int n = static_cast<lapack_int>(h.rows());
  MatD work = h;
  work.diagonal().array() += damp;
  const SingleThreadedBlas one_thread;
  // Row-major 'U': the upper triangle holds U with A = U^T U; the lower one is neither read nor written.
  if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, work.data(), n) != 0) return false;
  if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', n, work.data(), n) != 0) return false;  // upper of (H + damp I)^-1
  if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, work.data(), n) != 0) return false;
  out = work.triangularView<Eigen::Upper>().toDenseMatrix().cast<float>();
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
  // Fixed column chunks, each one dgemm on one BLAS thread: the upper triangle and diagonal block of the
  // chunk's columns, h[0 : c0+w, c0 : c0+w] += s2 * X[:, 0 : c0+w]^T X[:, c0 : c0+w]. The same products in the
  // same shapes for any thread count; the strict lower triangle is then mirrored from the upper one.
  constexpr int64_t kColChunk = 64;
  const int64_t n_chunks = (n + kColChunk - 1) / kColChunk;
  const SingleThreadedBlas one_thread;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = n_chunks - 1; c >= 0; --c) {  // the widest products first
    const int64_t c0 = c * kColChunk, w = std::min(n, c0 + kColChunk) - c0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(c0 + w), static_cast<blasint>(w),
                static_cast<blasint>(n_tokens), s2, xd.data(), static_cast<blasint>(n), xd.data() + c0,
                static_cast<blasint>(n), 1.0, h.data() + c0, static_cast<blasint>(n));
  }
  // Mirror tile by tile (a plain loop would read the upper triangle a column at a time).
  for (int64_t a0 = 0; a0 < n; a0 += kColChunk)
    for (int64_t b0 = 0; b0 <= a0; b0 += kColChunk)
      for (int64_t a = a0; a < std::min(n, a0 + kColChunk); ++a)
        for (int64_t b = b0; b < std::min(a, b0 + kColChunk); ++b) h(a, b) = h(b, a);
}

HessianAccumulator HessianAccumulator::from_matrix(int64_t n_in, std::vector<double> h, int64_t n_samples) {
  HessianAccumulator acc(n_in);
  check(h.size() == acc.h_.size(), "HessianAccumulator::from_matrix", "matrix has {} values, want {}^2", h.size(),
        n_in);
  acc.h_ = std::move(h);
  acc.n_samples_ = n_samples;
  return acc;
}

std::vector<int64_t> act_order_permutation(const HessianAccumulator& hessian) {
  const int64_t n = hessian.n_in();
  std::vector<double> diag(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double d = hessian.matrix()[static_cast<size_t>(i * n + i)];
    diag[static_cast<size_t>(i)] = d == 0.0 ? 1.0 : d;
  }
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  return perm;
}

GptqRun gptq_run(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                 const std::vector<int64_t>& perm_in, GptqGrid& grid, const GptqOptions& options) {
  const char* where = "gptq_quantize";
  check(n_out > 0 && n_in > 0, where, "empty layer {}x{}", n_out, n_in);
  check(hessian.n_in() == n_in, where, "Hessian is for {} inputs, layer has {}", hessian.n_in(), n_in);
  check(options.block_size > 0, where, "block_size must be positive, got {}", options.block_size);
  check(options.damp_percent >= 0 && options.damp_auto_increment >= 0, where, "damping must not be negative");
  const int64_t n = n_in;
  const Eigen::Map<const MatD> h(hessian.matrix().data(), n, n);
  check(h.allFinite(), where, "Hessian has non-finite values");
  std::vector<double> diag(static_cast<size_t>(n));

  GptqRun result;
  std::vector<float> wf(W, W + n_out * n);
  for (int64_t i = 0; i < n; ++i) {
    diag[i] = h(i, i);
    if (diag[i] != 0.0) continue;
    diag[i] = 1.0;
    for (int64_t r = 0; r < n_out; ++r) wf[r * n + i] = 0.f;
    ++result.dead_columns;
  }
  std::vector<int64_t> perm = perm_in;
  if (perm.empty()) {
    perm.resize(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), int64_t{0});
  }
  check(static_cast<int64_t>(perm.size()) == n, where, "permutation has {} entries for {} inputs", perm.size(), n);

  MatD hp(n, n);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b) hp(a, b) = a == b ? diag[perm[a]] : h(perm[a], perm[b]);
  MatF u;
  const double mean_diag = std::accumulate(diag.begin(), diag.end(), 0.0) / static_cast<double>(n);
  double dp = options.damp_percent;
  while (!inverse_upper_factor(hp, dp * mean_diag, u)) {
    check(options.damp_auto_increment > 0 && dp + options.damp_auto_increment < 1.0, where,
          "Hessian is not positive definite even with damp_percent {:.4f}", dp);
    dp += options.damp_auto_increment;
  }
  hp.resize(0, 0);
  result.damp_percent = dp;

  const int64_t gl = grid.group_len(n);
  const int64_t block = options.block_size;
  const int64_t n_chunks = (n_out + kRowChunk - 1) / kRowChunk;
  std::vector<double> row_loss(static_cast<size_t>(n_out), 0.0);
  std::string error;
  const SingleThreadedBlas one_thread;
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < n_chunks; ++c) {
    try {
      const int64_t r0 = c * kRowChunk, rows = std::min(n_out, r0 + kRowChunk) - r0;
      MatF wc(rows, n);  // this chunk's rows, columns in processing order
      std::vector<std::unique_ptr<GptqRowGrid>> row_grids;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < n; ++j) wc(r, j) = wf[(r0 + r) * n + perm[j]];
        row_grids.push_back(grid.row(r0 + r, &wf[(r0 + r) * n]));
      }
      for (int64_t i1 = 0; i1 < n; i1 += block) {
        const int64_t i2 = std::min(n, i1 + block), count = i2 - i1;
        MatF w1 = wc.middleCols(i1, count);
        MatF err1(rows, count);
        for (int64_t i = 0; i < count; ++i) {
          const int64_t col = i1 + i;
          const float d = u(col, col);
          if (col % gl == 0)
            for (int64_t r = 0; r < rows; ++r) row_grids[r]->begin_group(col, &wc(r, col), std::min(gl, n - col));
          for (int64_t r = 0; r < rows; ++r) {
            const float w = w1(r, i);
            const float diff = w - row_grids[r]->round(col, w);
            row_loss[r0 + r] += static_cast<double>(diff) * diff / (static_cast<double>(d) * d) / 2.0;
            const float e = diff / d;
            err1(r, i) = e;
            w1.row(r).tail(count - i) -= e * u.row(col).segment(col, count - i);
          }
        }
        // The lazy batch update wc[:, i2:] -= err1 * u[i1:i2, i2:], one sgemm on this thread's BLAS.
        if (i2 < n) {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows),
                      static_cast<blasint>(n - i2), static_cast<blasint>(count), -1.f, err1.data(),
                      static_cast<blasint>(count), u.data() + i1 * n + i2, static_cast<blasint>(n), 1.f,
                      wc.data() + i2, static_cast<blasint>(n));
        }
      }
    } catch (const Error& e) {
#pragma omp critical
      error = e.what();
    }
  }
  if (!error.empty()) throw Error(error);
  for (double l : row_loss) result.loss += l;
  return result;
}

namespace {

// GPTQ's own integer grid: per row and group a scale/zero from find_scale_zero (dynamic groups at the group's
// first processed column, static groups up front on the original order), written into a QuantizedLinear.
class IntGrid : public GptqGrid {
 public:
  IntGrid(QuantizedLinear& ql, const IntQuantConfig& cfg, const std::vector<int64_t>& perm)
      : ql_(ql), cfg_(cfg), perm_(perm) {}
  int64_t group_len(int64_t n_in) const override { return cfg_.group_len(n_in); }
  std::unique_ptr<GptqRowGrid> row(int64_t r, const float* w) override {
    return std::make_unique<Row>(*this, r, w);
  }

 private:
  struct Row : GptqRowGrid {
    Row(IntGrid& g, int64_t r, const float* w) : g(g), r(r) {
      const IntQuantConfig& cfg = g.cfg_;
      const int64_t n = g.ql_.n_in, gl = cfg.group_len(n), ng = (n + gl - 1) / gl;
      if (cfg.group_size > 0 && cfg.static_groups) {
        for (int64_t gi = 0; gi < ng; ++gi) {
          const int64_t j0 = gi * gl, len = std::min(n, j0 + gl) - j0;
          store(gi, find_scale_zero(w + j0, len, cfg.bits, cfg.sym, cfg.mse));
        }
      } else if (cfg.group_size < 0) {
        cur = find_scale_zero(w, n, cfg.bits, cfg.sym, cfg.mse);
        store(0, cur);
      }
    }
    void store(int64_t gi, ScaleZero p) {
      g.ql_.scales[gi * g.ql_.n_out + r] = p.scale;
      g.ql_.zeros[gi * g.ql_.n_out + r] = p.zero;
    }
    void begin_group(int64_t col, const float* w, int64_t len) override {
      const IntQuantConfig& cfg = g.cfg_;
      if (cfg.group_size < 0 || cfg.static_groups) return;
      cur = find_scale_zero(w, len, cfg.bits, cfg.sym, cfg.mse);
      store(col / cfg.group_len(g.ql_.n_in), cur);
    }
    float round(int64_t col, float w) override {
      const int64_t orig = g.perm_[col];
      ScaleZero p = cur;
      if (g.cfg_.group_size > 0 && g.cfg_.static_groups) {
        const int64_t gi = (orig / g.cfg_.group_len(g.ql_.n_in)) * g.ql_.n_out + r;
        p = {g.ql_.scales[gi], g.ql_.zeros[gi]};
      }
      const int qv = quantize_value(w, p, g.ql_.maxq());
      g.ql_.q[r * g.ql_.n_in + orig] = static_cast<uint8_t>(qv);
      return dequantize_value(qv, p);
    }
    IntGrid& g;
    int64_t r;
    ScaleZero cur;
  };
  QuantizedLinear& ql_;
  const IntQuantConfig& cfg_;
  const std::vector<int64_t>& perm_;
};

}  // namespace

GptqResult gptq_quantize(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                         const IntQuantConfig& cfg, const GptqOptions& options) {
  cfg.validate("gptq_quantize");
  check(n_out > 0 && n_in > 0, "gptq_quantize", "empty layer {}x{}", n_out, n_in);
  check(hessian.n_in() == n_in, "gptq_quantize", "Hessian is for {} inputs, layer has {}", hessian.n_in(), n_in);
  std::vector<int64_t> perm(static_cast<size_t>(n_in));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (cfg.desc_act) perm = act_order_permutation(hessian);
  GptqResult result;
  result.layer = QuantizedLinear::allocate(n_out, n_in, cfg);
  QuantizedLinear& ql = result.layer;
  const int64_t gl = cfg.group_len(n_in);
  // Static groups (and no act-order) keep the original column order; dynamic groups follow the processing order.
  for (int64_t j = 0; j < n_in; ++j) {
    if (cfg.static_groups || !cfg.desc_act) ql.g_idx[j] = static_cast<int32_t>(j / gl);
    else ql.g_idx[perm[j]] = static_cast<int32_t>(j / gl);
  }
  IntGrid grid(ql, cfg, perm);
  const GptqRun run = gptq_run(W, n_out, n_in, hessian, perm, grid, options);
  result.loss = run.loss;
  result.damp_percent = run.damp_percent;
  result.dead_columns = run.dead_columns;
  return result;
}

double hessian_relative_error(const float* W, const float* Wq, int64_t n_out, int64_t n_in,
                              const HessianAccumulator& hessian) {
  check(hessian.n_in() == n_in, "hessian_relative_error", "Hessian is for {} inputs, layer has {}", hessian.n_in(),
        n_in);
  const Eigen::Map<const MatD> h(hessian.matrix().data(), n_in, n_in);
  double num = 0, den = 0;
  Eigen::VectorXd w(n_in), d(n_in);
  for (int64_t r = 0; r < n_out; ++r) {
    for (int64_t i = 0; i < n_in; ++i) {
      w[i] = W[r * n_in + i];
      d[i] = static_cast<double>(W[r * n_in + i]) - Wq[r * n_in + i];
    }
    num += d.dot(h * d);
    den += w.dot(h * w);
  }
  return den > 0 ? num / den : 0.0;
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
