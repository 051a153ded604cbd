#include "support/ref_llama.h"

#include <cmath>
#include <numbers>
#include <string>

namespace lowbit::testing {
namespace {

using Vec = std::vector<double>;

struct Matrix {  // rows x cols, row-major: row o holds the weights of output o
  int64_t rows = 0, cols = 0;
  Vec w;
};

Matrix load_matrix(const ModelSource& src, const std::string& name) {
  const Tensor t = src.tensor(name);
  const std::vector<float> f = tensor_to_f32(t);
  return {t.ne()[1], t.ne()[0], Vec(f.begin(), f.end())};
}

Vec load_vector(const ModelSource& src, const std::string& name) {
  const std::vector<float> f = tensor_to_f32(src.tensor(name));
  return Vec(f.begin(), f.end());
}

Vec matvec(const Matrix& m, const Vec& x) {
  Vec y(static_cast<size_t>(m.rows), 0.0);
  for (int64_t o = 0; o < m.rows; ++o)
    for (int64_t i = 0; i < m.cols; ++i) y[o] += m.w[o * m.cols + i] * x[i];
  return y;
}

Vec rmsnorm(const Vec& x, const Vec& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w[i];
  return y;
}

// Rotates the head starting at x[off] by position `pos`.
void rotate(Vec& x, size_t off, int64_t hd, int64_t pos, const Vec& inv_freq, bool neox) {
  for (int64_t i = 0; i < hd / 2; ++i) {
    const double a = static_cast<double>(pos) * inv_freq[i];
    const size_t i0 = off + (neox ? i : 2 * i), i1 = off + (neox ? i + hd / 2 : 2 * i + 1);
    const double x0 = x[i0], x1 = x[i1];
    x[i0] = x0 * std::cos(a) - x1 * std::sin(a);
    x[i1] = x0 * std::sin(a) + x1 * std::cos(a);
  }
}

}  // namespace

std::vector<double> reference_llama3_factors(const ModelConfig& c) {
  // Llama 3.1: wavelengths shorter than orig/high are kept, longer than orig/low divided by `factor`, and the
  // band between interpolates smoothly; the factor returned divides the frequency.
  const int64_t hd = c.n_embd_head();
  const double orig = static_cast<double>(c.rope.original_context);
  std::vector<double> out;
  for (int64_t i = 0; i < hd / 2; ++i) {
    const double freq = std::pow(static_cast<double>(c.rope.theta), -2.0 * i / static_cast<double>(hd));
    const double wavelen = 2 * std::numbers::pi / freq;
    double new_freq;
    if (wavelen < orig / c.rope.high_freq_factor) {
      new_freq = freq;
    } else if (wavelen > orig / c.rope.low_freq_factor) {
      new_freq = freq / c.rope.factor;
    } else {
      const double smooth = (orig / wavelen - c.rope.low_freq_factor) / (c.rope.high_freq_factor - c.rope.low_freq_factor);
      new_freq = (1 - smooth) * freq / c.rope.factor + smooth * freq;
    }
    out.push_back(freq / new_freq);
  }
  return out;
}

std::vector<std::vector<double>> reference_llama_logits(const ModelSource& src, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = src.config();
  const int64_t hd = c.n_embd_head(), n = static_cast<int64_t>(tokens.size());
  const int64_t group = c.n_head / c.n_head_kv;

  Vec inv_freq(static_cast<size_t>(hd / 2));
  Vec factors(inv_freq.size(), 1.0);
  if (src.has_tensor("rope_freqs.weight")) factors = load_vector(src, "rope_freqs.weight");
  else if (c.rope.scaling == RopeScaling::Llama3) factors = reference_llama3_factors(c);
  for (int64_t i = 0; i < hd / 2; ++i) {
    inv_freq[i] = std::pow(static_cast<double>(c.rope.theta), -2.0 * i / static_cast<double>(hd)) / factors[i];
    if (c.rope.scaling == RopeScaling::Linear) inv_freq[i] /= c.rope.factor;
  }

  const Matrix embd = load_matrix(src, "token_embd.weight");
  std::vector<Vec> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t)
    x[t] = Vec(embd.w.begin() + tokens[t] * embd.cols, embd.w.begin() + (tokens[t] + 1) * embd.cols);

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const Matrix wq = load_matrix(src, p + "attn_q.weight"), wk = load_matrix(src, p + "attn_k.weight"),
                 wv = load_matrix(src, p + "attn_v.weight"), wo = load_matrix(src, p + "attn_output.weight"),
                 wg = load_matrix(src, p + "ffn_gate.weight"), wu = load_matrix(src, p + "ffn_up.weight"),
                 wd = load_matrix(src, p + "ffn_down.weight");
    const Vec attn_norm = load_vector(src, p + "attn_norm.weight"), ffn_norm = load_vector(src, p + "ffn_norm.weight");
    std::vector<Vec> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      const Vec h = rmsnorm(x[t], attn_norm, c.norm_eps);
      q[t] = matvec(wq, h), k[t] = matvec(wk, h), v[t] = matvec(wv, h);
      if (c.attn_qkv_bias) {
        const Vec bq = load_vector(src, p + "attn_q.bias"), bk = load_vector(src, p + "attn_k.bias"),
                  bv = load_vector(src, p + "attn_v.bias");
        for (size_t i = 0; i < q[t].size(); ++i) q[t][i] += bq[i];
        for (size_t i = 0; i < k[t].size(); ++i) k[t][i] += bk[i], v[t][i] += bv[i];
      }
      auto head_norm = [&](Vec& y, const Vec& w) {
        for (size_t off = 0; off < y.size(); off += static_cast<size_t>(hd)) {
          const Vec head = rmsnorm(Vec(y.begin() + off, y.begin() + off + hd), w, c.norm_eps);
          std::copy(head.begin(), head.end(), y.begin() + off);
        }
      };
      if (c.attn_qk_norm) {
        head_norm(q[t], load_vector(src, p + "attn_q_norm.weight"));
        head_norm(k[t], load_vector(src, p + "attn_k_norm.weight"));
      }
      for (int64_t h = 0; h < c.n_head; ++h) rotate(q[t], h * hd, hd, t, inv_freq, c.rope.neox);
      for (int64_t h = 0; h < c.n_head_kv; ++h) rotate(k[t], h * hd, hd, t, inv_freq, c.rope.neox);
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec att(static_cast<size_t>(c.n_embd_q()), 0.0);
      for (int64_t h = 0; h < c.n_head; ++h) {
        const size_t qo = h * hd, ko = (h / group) * hd;
        Vec s(static_cast<size_t>(t + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[t][qo + i] * k[j][ko + i];
          s[j] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < hd; ++i) att[qo + i] += s[j] / sum * v[j][ko + i];
      }
      const Vec o = matvec(wo, att);
      for (size_t i = 0; i < o.size(); ++i) x[t][i] += o[i];
      const Vec h = rmsnorm(x[t], ffn_norm, c.norm_eps);
      Vec g = matvec(wg, h);
      const Vec u = matvec(wu, h);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const Vec d = matvec(wd, g);
      for (size_t i = 0; i < d.size(); ++i) x[t][i] += d[i];
    }
  }
  const Vec out_norm = load_vector(src, "output_norm.weight");
  const Matrix out = load_matrix(src, c.tied_embeddings ? "token_embd.weight" : "output.weight");
  std::vector<Vec> logits;
  for (int64_t t = 0; t < n; ++t) logits.push_back(matvec(out, rmsnorm(x[t], out_norm, c.norm_eps)));
  return logits;
}

}  // namespace lowbit::testing
