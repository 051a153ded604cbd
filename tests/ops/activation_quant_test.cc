// Activations are quantized exactly as ggml's x86 CPU backend does: the bytes of tests/data/ggml-vectors/vecdot/
// act.*.q (ggml's from_float of inputs.f32, see the README there), and the quad sums the VNNI kernels use.
#include "ops/activation_quant.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "support/ggml_vectors.h"

namespace lowbit {
namespace {

using namespace testing_support;  // NOLINT: the vectors' readers and sizes

TEST(ActivationQuant, SameBytesAsGgml) {
  const std::vector<float> x = ggml_vector_floats("inputs.f32");
  for (DType type : {DType::Q8_0, DType::Q8_1, DType::Q8_K, DType::F16, DType::BF16}) {
    const std::vector<uint8_t> want = ggml_vector_bytes(std::string("vecdot/act.") + dtype_name(type) + ".q");
    for (int threads : {1, 2}) {
      const QuantizedActivations acts = quantize_activations(type, x.data(), kVectorRows, kVectorCols, threads);
      ASSERT_EQ(acts.row_bytes() * kVectorRows, want.size()) << dtype_name(type);
      for (int t = 0; t < kVectorRows; ++t)
        EXPECT_EQ(0, std::memcmp(acts.row(t), want.data() + acts.row_bytes() * t, acts.row_bytes()))
            << dtype_name(type) << " row " << t;
    }
  }
}

TEST(ActivationQuant, QuadAndBlockSumsAddTheirValues) {
  const std::vector<float> x = ggml_vector_floats("inputs.f32");
  const QuantizedActivations acts = quantize_activations(DType::Q8_0, x.data(), kVectorRows, kVectorCols, 1);
  for (int t = 0; t < kVectorRows; ++t) {
    const ActRow r = acts.kernel_row(t);
    ASSERT_NE(r.quad_sums, nullptr);
    const auto* blocks = reinterpret_cast<const int8_t*>(r.blocks);
    for (int b = 0; b < kVectorCols / 32; ++b) {
      int32_t total = 0;
      for (int l = 0; l < 8; ++l) {
        const int8_t* q = blocks + b * 34 + 2 + 4 * l;  // BlockQ8_0: fp16 d, then 32 values
        ASSERT_EQ(r.quad_sums[8 * b + l], q[0] + q[1] + q[2] + q[3]) << "row " << t << " block " << b;
        total += q[0] + q[1] + q[2] + q[3];
      }
      ASSERT_EQ(r.block_sums[b], total) << "row " << t << " block " << b;
    }
  }
  EXPECT_EQ(quantize_activations(DType::Q8_K, x.data(), 1, kVectorCols, 1).kernel_row(0).quad_sums, nullptr);
}

}  // namespace
}  // namespace lowbit
