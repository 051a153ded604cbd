#include "ops/matmul.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/float_formats.h"
#include "ops/activation_quant.h"
#include "ops/packed_weight.h"
#include "ops/simd_matmul.h"
#include "quant/legacy_quants.h"
#include "util/error.h"
#include "util/parallel.h"

namespace lowbit {
namespace {

// The default kernel of each weight type: the SIMD one where it exists, else none (the generic path).
MatmulKernel default_kernel(DType type) { return simd_matmul_supports(type) ? matmul_simd : nullptr; }

// The kernel of each weight type, by its place in the type table.
std::vector<MatmulKernel>& kernels() {
  static std::vector<MatmulKernel> table = [] {
    std::vector<MatmulKernel> t;
    for (const TypeTraits& tt : all_types()) t.push_back(default_kernel(tt.type));
    return t;
  }();
  return table;
}
MatmulKernel& kernel_for(DType type) {
  return kernels()[static_cast<size_t>(&type_traits(type) - all_types().data())];
}

// Four independent partial sums, combined in a fixed order: vectorisable and deterministic.
inline float dot(const float* a, const float* b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Q8_0/Q8_1 activations are rounded as ggml's x86 CPU path quantizes them (quantize_activation_q8_0).
void round_through_q8_0(const float* x, float* out, int64_t n) {
  std::vector<BlockQ8_0> blocks(static_cast<size_t>(n / 32));
  quantize_activation_q8_0(x, blocks.data(), n);
  for (size_t b = 0; b < blocks.size(); ++b) {
    const float d = f16_to_f32(blocks[b].d);
    for (int j = 0; j < 32; ++j) out[b * 32 + static_cast<size_t>(j)] = d * blocks[b].qs[j];
  }
}

}  // namespace

DType activation_type(DType w) {
  switch (w) {
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::IQ4_NL: case DType::I4G: return DType::Q8_0;
    case DType::Q4_1: case DType::Q5_1: return DType::Q8_1;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::IQ4_XS:
      return DType::Q8_K;
    case DType::F16: return DType::F16;
    case DType::BF16: return DType::BF16;
    default: return DType::F32;
  }
}

void register_matmul_kernel(DType type, MatmulKernel kernel) {
  kernel_for(type) = kernel ? kernel : default_kernel(type);
}

void dequantize_row(const Tensor& w, int64_t row, float* out) {
  const int64_t n = w.ne()[0];
  const size_t rb = row_bytes(w.type(), n);
  const uint8_t* src = w.data + static_cast<size_t>(row) * rb;
  std::vector<uint8_t> bytes;
  if (w.interleaved_rows) {
    bytes.resize(rb);
    copy_row(w, row, bytes.data());
    src = bytes.data();
  }
  if (!w.input_order) return to_float(w.type(), src, out, n, w.name());
  std::vector<float> stored(static_cast<size_t>(n));  // stored column k is original column input_order[k]
  to_float(w.type(), src, stored.data(), n, w.name());
  for (int64_t k = 0; k < n; ++k) out[(*w.input_order)[static_cast<size_t>(k)]] = stored[static_cast<size_t>(k)];
}

std::vector<float> gather_input(const Tensor& w, const float* x, int64_t n_tokens) {
  const int64_t n = w.ne()[0];
  std::vector<float> out(static_cast<size_t>(n * n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t k = 0; k < n; ++k) out[static_cast<size_t>(t * n + k)] = x[t * n + (*w.input_order)[static_cast<size_t>(k)]];
  return out;
}

void matmul_generic(const Tensor& w, const float* x_in, int64_t n_tokens, float* y, int threads) {
  const int64_t n_in = w.ne()[0];
  // Round the activations through the type llama.cpp would quantize them to (see activation_type).
  const DType at = activation_type(w.type());
  std::vector<float> x_rounded;
  const float* x = x_in;
  if (at != DType::F32 && row_fits(at, n_in)) {
    x_rounded.resize(static_cast<size_t>(n_tokens * n_in));
    std::vector<uint8_t> q(row_bytes(at, n_in));
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (at == DType::Q8_0 || at == DType::Q8_1) {
        round_through_q8_0(x_in + t * n_in, x_rounded.data() + t * n_in, n_in);
        continue;
      }
      quantize_rows(at, x_in + t * n_in, q.data(), 1, n_in);
      to_float(at, q.data(), x_rounded.data() + t * n_in, n_in);
    }
    x = x_rounded.data();
  }
  matmul_exact(w, x, n_tokens, y, threads);
}

void matmul_exact(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const int64_t n_in = w.ne()[0], n_out = w.info.n_rows();
  const bool is_f32 = w.type() == DType::F32;
  constexpr int64_t kRowsPerBlock = 16;
  const int64_t n_blocks = (n_out + kRowsPerBlock - 1) / kRowsPerBlock;
  const size_t bytes = static_cast<size_t>(n_out) * row_bytes(w.type(), n_in);
  const int most = n_tokens == 1 ? threads_for_bytes(bytes, threads) : threads;
  parallel_region(static_cast<int>(std::clamp<int64_t>(n_blocks, 1, most)), [&](int i, int n_threads) {
    std::vector<float> rows(is_f32 ? 0 : static_cast<size_t>(kRowsPerBlock * n_in));
    const Share share = static_share(n_blocks, i, n_threads);
    for (int64_t b = share.begin; b < share.end; ++b) {
      const int64_t r0 = b * kRowsPerBlock, nr = std::min(kRowsPerBlock, n_out - r0);
      const float* wr = reinterpret_cast<const float*>(w.data) + r0 * n_in;
      if (!is_f32) {
        for (int64_t r = 0; r < nr; ++r) dequantize_row(w, r0 + r, rows.data() + r * n_in);
        wr = rows.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < nr; ++r) y[t * n_out + r0 + r] = dot(wr + r * n_in, x + t * n_in, n_in);
    }
  });
}

void matmul_shared_input(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens, int threads,
                         bool round_activations) {
  bool all_simd = round_activations;
  for (const MatmulTarget& t : targets) {
    all_simd &= kernel_for(t.w->type()) == matmul_simd && !t.w->input_order;
  }
  if (all_simd) return matmul_simd_shared_input(targets, x, n_tokens, std::max(1, threads));
  for (const MatmulTarget& t : targets) matmul(*t.w, x, n_tokens, t.y, threads, round_activations);
}

void matmul(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads, bool round_activations) {
  if (!round_activations) return matmul_exact(w, x, n_tokens, y, std::max(1, threads));
  std::vector<float> gathered;
  if (w.input_order) {  // the kernels see the stored column order
    gathered = gather_input(w, x, n_tokens);
    x = gathered.data();
  }
  const MatmulKernel k = kernel_for(w.type());
  (k ? k : matmul_generic)(w, x, n_tokens, y, std::max(1, threads));
}

}  // namespace lowbit
