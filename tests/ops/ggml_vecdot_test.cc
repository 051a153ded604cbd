// lowbit's matmul kernels against llama.cpp's own CPU matmuls: for every block type, the 16 x 512 weight rows of
// tests/data/ggml-vectors (quantized by ggml) times the 16 input rows, as llama.cpp c392e50's x86 backend computes
// them (built with -march=native; data in vecdot/, see the README there): ggml_vec_dot_<type>_<act>, and for Q4_0,
// IQ4_NL, Q2_K and Q4_K, which it repacks on x86 (Q2_K on AVX-512 CPUs), its repacked matmul (all but Q4_0's from
// ggml d99724f), and Q8_0, Q4_1 and IQ4_XS also as its AMX backend multiplies them on CPUs with AMX. The integer
// parts are exact and the float order is llama.cpp's, so every bit must match, on every SIMD target this CPU runs,
// for every tile shape and thread count.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "ops/dot_reference.h"
#include "ops/matmul.h"
#include "support/ggml_vectors.h"
#include "support/simd_targets.h"
#include "support/weight_matrices.h"

namespace lowbit {
namespace {

using namespace testing_support;  // NOLINT: the vectors' readers and sizes
using Case = VectorCase;

Tensor weights(const Case& c) {
  const TensorInfo info = matrix_info(c.type, kVectorCols, kVectorRows);
  std::vector<uint8_t> bytes = ggml_vector_bytes(c.file(".q"));
  EXPECT_EQ(bytes.size(), info.n_bytes());
  return make_owned_tensor(info, std::move(bytes));
}

// The types llama.cpp repacks on this machine (Q2_K only where AVX-512 is present, as here).
bool repacked_on_x86(DType type) {
  return type == DType::Q4_0 || type == DType::IQ4_NL || type == DType::Q2_K || type == DType::Q4_K;
}

class GgmlVecDot : public testing::TestWithParam<Case> {};

// The types whose order is llama.cpp's AMX backend's on CPUs with AMX (ops/dot_reference.h SumOrder).
bool amx_type(DType type) { return type == DType::Q8_0 || type == DType::Q4_1 || type == DType::IQ4_XS; }

// llama.cpp's bits for this case in `order`: in the AMX order from its AMX backend (vecdot/README.md).
std::string want_file(const Case& c, SumOrder order) {
  if (amx_type(c.type) && order == SumOrder::kAmx) return c.file(".amx.f32");
  return c.file(repacked_on_x86(c.type) ? ".repack.f32" : ".vecdot.f32");
}

TEST_P(GgmlVecDot, SameBitsAsGgml) {
  const Case c = GetParam();
  const Tensor w = weights(c);
  const std::vector<float> x = ggml_vector_floats("inputs.f32");
  // Those in both their orders on any machine: where the CPU has AMX, the batch of 32 runs on the tiles.
  const std::vector<SumOrder> orders =
      amx_type(c.type) ? std::vector{SumOrder::kVecDot, SumOrder::kAmx} : std::vector{SumOrder::kByCpu};
  for (SumOrder order : orders) {
    set_sum_order(order);
    // want[a * 16 + r]: weight row r times activation row a, i.e. y[token a][row r].
    const std::vector<float> want = ggml_vector_floats("vecdot/" + want_file(c, order));
    ASSERT_EQ(want.size(), size_t{kVectorRows * kVectorRows});
    auto check = [&](const std::vector<float>& got, const std::string& what) {
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << what << " in order " << static_cast<int>(order) << ": row " << i % kVectorRows << " token "
            << i / kVectorRows << ": " << got[i] << " vs " << want[i];
    };
    for_each_simd_target([&](int64_t target) {
      const std::string on = std::string(" on ") + hwy::TargetName(target);
      for (int threads : {1, 2}) {
        std::vector<float> y(want.size());
        matmul(w, x.data(), kVectorRows, y.data(), threads);
        check(y, "batch of 16, " + std::to_string(threads) + " threads" + on);
      }
      // The 16 inputs twice, a batch AMX tiles take where the CPU has them (ops/amx_matmul.h): each half the same.
      std::vector<float> x2 = x, y2(2 * want.size());
      x2.insert(x2.end(), x.begin(), x.end());
      matmul(w, x2.data(), 2 * kVectorRows, y2.data(), 2);
      for (int half : {0, 1})
        check(std::vector<float>(y2.begin() + half * want.size(), y2.begin() + (half + 1) * want.size()),
              "batch of 32, half " + std::to_string(half) + on);
      // Token by token (generation) and in odd batches: the same bits.
      std::vector<float> y(want.size());
      for (int64_t t0 = 0; t0 < kVectorRows;) {
        const int64_t n = std::min<int64_t>(t0 % 2 ? 3 : 1, kVectorRows - t0);
        matmul(w, x.data() + t0 * kVectorCols, n, y.data() + t0 * kVectorRows, 1);
        t0 += n;
      }
      check(y, "batches of 1 and 3" + on);
    });
  }
  set_sum_order(SumOrder::kByCpu);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS})
    for (bool im : {false, true}) cases.push_back({t, im});
  return cases;
}
INSTANTIATE_TEST_SUITE_P(AllBlockTypes, GgmlVecDot, testing::ValuesIn(all_cases()), vector_case_name);

}  // namespace
}  // namespace lowbit
