#include "ops/matmul.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <vector>

#include "util/error.h"

namespace lowbit {
namespace {

std::array<MatmulKernel, 64>& kernels() {
  static std::array<MatmulKernel, 64> table{};
  return table;
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

}  // namespace

void register_matmul_kernel(DType type, MatmulKernel kernel) {
  const auto id = static_cast<uint32_t>(type);
  check(id < kernels().size(), "matmul", "cannot register a kernel for type {}", dtype_name(type));
  kernels()[id] = kernel;
}

void dequantize_row(const Tensor& w, int64_t row, float* out) {
  const size_t rb = row_bytes(w.type(), w.ne()[0]);
  to_float(w.type(), w.data + static_cast<size_t>(row) * rb, out, w.ne()[0], w.name());
}

void matmul_generic(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const int64_t n_in = w.ne()[0], n_out = w.info.n_rows();
  const bool is_f32 = w.type() == DType::F32;
  constexpr int64_t kRowsPerBlock = 16;
  const int64_t n_blocks = (n_out + kRowsPerBlock - 1) / kRowsPerBlock;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> rows(is_f32 ? 0 : static_cast<size_t>(kRowsPerBlock * n_in));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t r0 = b * kRowsPerBlock, nr = std::min(kRowsPerBlock, n_out - r0);
      const float* wr = reinterpret_cast<const float*>(w.data) + r0 * n_in;
      if (!is_f32) {
        for (int64_t r = 0; r < nr; ++r) dequantize_row(w, r0 + r, rows.data() + r * n_in);
        wr = rows.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < nr; ++r) y[t * n_out + r0 + r] = dot(wr + r * n_in, x + t * n_in, n_in);
    }
  }
}

void matmul(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads) {
  const auto id = static_cast<uint32_t>(w.type());
  const MatmulKernel k = id < kernels().size() ? kernels()[id] : nullptr;
  (k ? k : matmul_generic)(w, x, n_tokens, y, std::max(1, threads));
}

}  // namespace lowbit
