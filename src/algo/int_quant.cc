#include "algo/int_quant.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/float_formats.h"
#include "quant/int_groups.h"
#include "quant/legacy_quants.h"
#include "util/blas.h"
#include "util/error.h"

namespace lowbit {

void IntQuantConfig::validate(const char* where) const {
  check(bits >= 2 && bits <= 8, where, "bits must be 2..8, got {}", bits);
  check(group_size == -1 || group_size > 0, where, "group_size must be -1 or positive, got {}", group_size);
}

QuantizedLinear QuantizedLinear::allocate(int64_t n_out, int64_t n_in, const IntQuantConfig& cfg) {
  const int64_t gl = cfg.group_len(n_in);
  const int64_t ng = (n_in + gl - 1) / gl;
  QuantizedLinear ql{.n_in = n_in, .n_out = n_out, .bits = cfg.bits, .group_size = cfg.group_size, .sym = cfg.sym};
  ql.q.resize(static_cast<size_t>(n_out * n_in));
  ql.scales.resize(static_cast<size_t>(ng * n_out));
  ql.zeros.resize(ql.scales.size());
  ql.g_idx.resize(static_cast<size_t>(n_in));
  for (int64_t i = 0; i < n_in; ++i) ql.g_idx[i] = static_cast<int32_t>(i / gl);
  return ql;
}

std::vector<float> QuantizedLinear::dequantize() const {
  validate("QuantizedLinear::dequantize");
  std::vector<float> w(static_cast<size_t>(n_out * n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    for (int64_t i = 0; i < n_in; ++i) {
      const size_t gi = static_cast<size_t>(g_idx[i] * n_out + o);
      const ScaleZero p{scales[gi], zeros[gi]};
      w[o * n_in + i] = dequantize_value(q[o * n_in + i], p);
    }
  }
  return w;
}

void QuantizedLinear::validate(const char* where) const {
  check(bits >= 2 && bits <= 8, where, "bits must be 2..8, got {}", bits);
  check(n_in > 0 && n_out > 0, where, "empty layer {}x{}", n_out, n_in);
  check(q.size() == static_cast<size_t>(n_out * n_in), where, "q has {} values, want {}", q.size(), n_out * n_in);
  check(g_idx.size() == static_cast<size_t>(n_in), where, "g_idx has {} values, want {}", g_idx.size(), n_in);
  check(!scales.empty() && scales.size() % n_out == 0 && zeros.size() == scales.size(), where,
        "scales/zeros sizes {}/{} are not n_groups x {}", scales.size(), zeros.size(), n_out);
  const int64_t ng = n_groups();
  for (int32_t g : g_idx) check(g >= 0 && g < ng, where, "g_idx value {} outside 0..{}", g, ng - 1);
  const uint8_t maxq = static_cast<uint8_t>((1 << bits) - 1);
  for (uint8_t v : q) check(v <= maxq, where, "quantized value {} exceeds {} for {} bits", v, maxq, bits);
}

namespace {

// Sum over the group of |dequant(quant(x)) - x|^norm for one candidate.
float grid_error(const float* x, int64_t n, ScaleZero p, int maxq, float norm) {
  float err = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = std::fabs(dequantize_value(quantize_value(x[i], p, maxq), p) - x[i]);
    err += std::pow(d, norm);
  }
  return err;
}

}  // namespace

ScaleZero find_scale_zero(const float* x, int64_t n, int bits, bool sym, bool mse) {
  const int maxq = (1 << bits) - 1;
  float xmin = 0.f, xmax = 0.f;  // the range always includes 0
  for (int64_t i = 0; i < n; ++i) {
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
  }
  if (sym) {
    xmax = std::max(std::fabs(xmin), xmax);
    if (xmin < 0.f) xmin = -xmax;
  }
  if (xmin == 0.f && xmax == 0.f) {
    xmin = -1.f;
    xmax = 1.f;
  }
  const float fmaxq = static_cast<float>(maxq);
  const float sym_zero = static_cast<float>(maxq + 1) / 2.f;
  ScaleZero best{(xmax - xmin) / fmaxq, 0.f};
  best.zero = sym ? sym_zero : std::nearbyint(-xmin / best.scale);
  if (!mse) return best;

  constexpr int kGrid = 100;
  constexpr float kMaxShrink = 0.8f, kNorm = 2.4f;
  float best_err = std::numeric_limits<float>::infinity();
  for (int i = 0; i < static_cast<int>(kMaxShrink * kGrid); ++i) {
    const float p = 1.f - static_cast<float>(i) / kGrid;
    const float lo = p * xmin, hi = p * xmax;
    ScaleZero cand{(hi - lo) / fmaxq, 0.f};
    cand.zero = sym ? sym_zero : std::nearbyint(-lo / cand.scale);
    const float err = grid_error(x, n, cand, maxq, kNorm);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

std::vector<float> linear_forward(const float* X, int64_t n_tokens, const float* W, int64_t n_out, int64_t n_in) {
  std::vector<float> Y(static_cast<size_t>(n_tokens * n_out));
  constexpr int64_t kChunk = 64;  // fixed, so each output's summation order never depends on the thread count
  const int64_t n_chunks = (n_tokens + kChunk - 1) / kChunk;
  const SingleThreadedBlas one_thread;  // each chunk one sgemm on its own thread
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t t0 = c * kChunk, t1 = std::min(n_tokens, t0 + kChunk);
    // Y[t0:t1] = X[t0:t1] W^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(t1 - t0), static_cast<blasint>(n_out),
                static_cast<blasint>(n_in), 1.f, X + t0 * n_in, static_cast<blasint>(n_in), W,
                static_cast<blasint>(n_in), 0.f, Y.data() + t0 * n_out, static_cast<blasint>(n_out));
  }
  return Y;
}

namespace {

// Input columns sorted by group (stable), or empty when they already are in order with whole-block groups.
std::vector<int32_t> group_order(const QuantizedLinear& ql) {
  std::vector<int32_t> order(static_cast<size_t>(ql.n_in));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return ql.g_idx[a] < ql.g_idx[b]; });
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int32_t>(i)) return order;
  return {};
}

}  // namespace

std::optional<Tensor> engine_tensor(const QuantizedLinear& ql, const std::string& name) {
  ql.validate(name.c_str());
  if (ql.n_in % 32 != 0 || ql.n_out <= 0) return std::nullopt;
  const std::vector<int32_t> order = group_order(ql);
  auto column = [&](int64_t k) { return order.empty() ? k : order[static_cast<size_t>(k)]; };
  // Every block of 32 (sorted) columns must lie in one group.
  for (int64_t k = 0; k < ql.n_in; k += 32)
    if (ql.g_idx[column(k)] != ql.g_idx[column(k + 31)]) return std::nullopt;
  const int64_t n_groups = ql.n_groups();
  auto scale16 = [&](int64_t g, int64_t o) { return f32_to_f16(ql.scales[static_cast<size_t>(g * ql.n_out + o)]); };
  auto zero = [&](int64_t g, int64_t o) { return static_cast<int>(ql.zeros[static_cast<size_t>(g * ql.n_out + o)]); };
  // The checkpoint's scales are fp16 already; anything else would not survive the block format.
  for (int64_t g = 0; g < n_groups; ++g)
    for (int64_t o = 0; o < ql.n_out; ++o)
      if (f16_to_f32(scale16(g, o)) != ql.scales[static_cast<size_t>(g * ql.n_out + o)]) return std::nullopt;

  TensorInfo info;
  info.name = name;
  info.n_dims = 2;
  info.ne = {ql.n_in, ql.n_out, 1, 1};
  // Each 32-value block of each row: its group and its levels, in stored column order.
  auto for_each_block = [&](auto&& write) {
    uint8_t levels[32];
    for (int64_t o = 0; o < ql.n_out; ++o)
      for (int64_t k = 0; k < ql.n_in; k += 32) {
        for (int j = 0; j < 32; ++j) levels[j] = ql.q[static_cast<size_t>(o * ql.n_in + column(k + j))];
        write((o * ql.n_in + k) / 32, ql.g_idx[column(k)], o, levels);
      }
  };
  std::vector<uint8_t> bytes;
  if (ql.bits <= 4) {
    info.type = DType::I4G;
    bytes.resize(info.n_bytes());
    auto* blocks = reinterpret_cast<BlockI4G*>(bytes.data());
    for_each_block([&](int64_t i, int64_t g, int64_t o, const uint8_t* levels) {
      blocks[i].d = scale16(g, o);
      blocks[i].z = static_cast<uint8_t>(zero(g, o));
      legacy::pack_nibbles(levels, blocks[i].qs);
    });
  } else if (ql.bits == 8) {
    for (int64_t g = 0; g < n_groups; ++g)
      for (int64_t o = 0; o < ql.n_out; ++o)
        if (zero(g, o) != 128) return std::nullopt;
    info.type = DType::Q8_0;
    bytes.resize(info.n_bytes());
    auto* blocks = reinterpret_cast<BlockQ8_0*>(bytes.data());
    for_each_block([&](int64_t i, int64_t g, int64_t o, const uint8_t* levels) {
      blocks[i].d = scale16(g, o);
      for (int j = 0; j < 32; ++j) blocks[i].qs[j] = static_cast<int8_t>(levels[j] - 128);
    });
  } else {
    return std::nullopt;
  }
  Tensor t = make_owned_tensor(info, std::move(bytes));
  if (!order.empty()) t.input_order = std::make_shared<const std::vector<int32_t>>(order);
  return t;
}

}  // namespace lowbit
