#include "ops/amx_matmul.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/float_formats.h"
#include "ops/dot_reference.h"
#include "ops/matmul.h"
#include "quant/k_quants.h"
#include "quant/legacy_quants.h"
#include "support/every_call_threaded.h"
#include "support/weight_matrices.h"
#include "util/cpu_features.h"

namespace lowbit {
namespace {

// Q8_0, Q4_0, IQ4_NL, Q4_1, Q4_K or IQ4_XS rows of raw blocks: every byte value (Q8_0's -128 too, which no quantizer
// writes but a file may hold; every 6-bit scale and min), scales over several binades and Q4_1 offsets of either
// sign.
Tensor raw_blocks(DType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  const TensorInfo info = testing_support::matrix_info(type, n_in, n_out);
  std::mt19937 rng(seed);
  const auto scale = [&] {
    return f32_to_f16(std::ldexp(static_cast<float>(rng() % 1000 + 1) / 1000.0f, static_cast<int>(rng() % 9) - 10));
  };
  std::vector<uint8_t> bytes(info.n_bytes());
  const int64_t block = type_traits(type).block_size;
  for (size_t b = 0; b < info.n_rows() * static_cast<size_t>(n_in / block); ++b) {
    if (type == DType::Q8_0) {
      auto& block = reinterpret_cast<BlockQ8_0*>(bytes.data())[b];
      block.d = scale();
      for (int8_t& q : block.qs) q = static_cast<int8_t>(rng());
    } else if (type == DType::Q4_0 || type == DType::IQ4_NL) {  // the same layout
      auto& block = reinterpret_cast<BlockQ4_0*>(bytes.data())[b];
      block.d = scale();
      for (uint8_t& q : block.qs) q = static_cast<uint8_t>(rng());
    } else if (type == DType::Q4_K) {
      auto& block = reinterpret_cast<BlockQ4K*>(bytes.data())[b];
      block.d = scale();
      block.dmin = scale();
      for (uint8_t& q : block.scales) q = static_cast<uint8_t>(rng());
      for (uint8_t& q : block.qs) q = static_cast<uint8_t>(rng());
    } else if (type == DType::IQ4_XS) {
      auto& block = reinterpret_cast<BlockIQ4XS*>(bytes.data())[b];
      block.d = scale();
      block.scales_h = static_cast<uint16_t>(rng());
      for (uint8_t& q : block.scales_l) q = static_cast<uint8_t>(rng());
      for (uint8_t& q : block.qs) q = static_cast<uint8_t>(rng());
    } else {
      auto& block = reinterpret_cast<BlockQ4_1*>(bytes.data())[b];
      block.d = scale();
      block.m = static_cast<uint16_t>(scale() | (rng() & 1 ? 0x8000 : 0));
      for (uint8_t& q : block.qs) q = static_cast<uint8_t>(rng());
    }
  }
  return make_owned_tensor(info, std::move(bytes));
}

std::vector<float> activations(int64_t n_in, int64_t n_tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
  for (float& v : x) v = normal(rng);
  return x;
}

class AmxOrder : public testing::Test {
 protected:
  AmxOrder() { set_sum_order(SumOrder::kAmx); }
  ~AmxOrder() override { set_sum_order(SumOrder::kByCpu); }
};

// The tiles take Q8_0 and IQ4_XS batches exactly where the CPU has them and the order is the AMX one; Q4_0's,
// IQ4_NL's and Q4_K's wherever the CPU has them; Q4_1's nowhere (the row-lane kernels are as fast).
TEST_F(AmxOrder, TilesTakeTheirTypesWhereTheCpuHasThem) {
  EXPECT_EQ(amx_matmul_takes(DType::Q8_0, 32), cpu_has_amx_int8());
  EXPECT_FALSE(amx_matmul_takes(DType::Q8_0, 31));  // kAmxMinTokens
  EXPECT_FALSE(amx_matmul_takes(DType::Q4_1, 32));
  EXPECT_EQ(amx_matmul_takes(DType::IQ4_XS, 32), cpu_has_amx_int8());
  EXPECT_FALSE(amx_matmul_takes(DType::Q5_K, 32));
  set_sum_order(SumOrder::kVecDot);
  for (DType type : {DType::Q8_0, DType::IQ4_XS}) EXPECT_FALSE(amx_matmul_takes(type, 32));
  // Q4_0, IQ4_NL and Q4_K sum one float a row (Q4_K two) in either order: the tiles take them wherever they can.
  for (DType type : {DType::Q4_0, DType::IQ4_NL, DType::Q4_K})
    EXPECT_EQ(amx_matmul_takes(type, 32), cpu_has_amx_int8()) << dtype_name(type);
}

// Q8_0, Q4_0, IQ4_NL, Q4_K and IQ4_XS (and Q4_1, whose order changes too) batches of every size around the tiles'
// pairs of 16 tokens and their 16 rows, packed by 16 (read in place), by 8 and 4 and not at all (copied into slots),
// 1 and 2 threads: the reference's bits. On a
// CPU without AMX this checks the row-lane kernels in the same order; the test says so.
TEST_F(AmxOrder, BatchesGiveTheReferenceBits) {
  if (!cpu_has_amx_int8()) std::puts("no AMX here: the AMX order runs on the row-lane kernels only");
  struct Shape {
    int64_t n_in, n_out;
  };
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::IQ4_NL, DType::Q4_1, DType::Q4_K, DType::IQ4_XS}) {
    for (const Shape& sh : {Shape{32, 16}, Shape{64, 1}, Shape{96, 33}, Shape{1024, 48}, Shape{160, 71}, Shape{256, 20},
                              Shape{768, 17}}) {
      if (!row_fits(type, sh.n_in)) continue;
      const Tensor t = raw_blocks(type, sh.n_in, sh.n_out, static_cast<uint32_t>(sh.n_in * 7 + sh.n_out));
      const Tensor packed[] = {t, pack_for_matmul(t, 16), pack_for_matmul(t, 8), pack_for_matmul(t, 4)};
      // 16: no tiles; 32, 64: whole pairs; 37, 48: a last pair of 5 (16) and one repeated token; 49: of 16 and 1.
      for (int64_t n_tokens : {16, 32, 37, 48, 49, 64}) {
        const auto x = activations(sh.n_in, n_tokens, static_cast<uint32_t>(n_tokens));
        std::vector<float> ref(static_cast<size_t>(sh.n_out * n_tokens));
        matmul_reference(t, x.data(), n_tokens, ref.data(), 1);
        for (const Tensor& w : packed)
          for (int threads : {1, 2}) {
            std::vector<float> y(ref.size());
            const EveryCallThreaded every_call_threaded;
            matmul(w, x.data(), n_tokens, y.data(), threads);
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(ref[i]))
                  << dtype_name(type) << " " << sh.n_in << "x" << sh.n_out << " packed by " << w.interleaved_rows
                  << ", " << n_tokens << " tokens, " << threads << " threads, output " << i << ": " << y[i] << " vs "
                  << ref[i];
          }
      }
    }
  }
}

// The AMX order is llama.cpp's AMX backend's: one float per output, one FMA per block of the block's exact integer
// sum times d_w * d_a. Written out here from the blocks, against the reference.
TEST_F(AmxOrder, ReferenceSumsWholeBlocks) {
  const int64_t n_in = 256;
  const Tensor t = raw_blocks(DType::Q8_0, n_in, 1, 5);
  const auto x = activations(n_in, 1, 6);
  std::vector<uint8_t> act(row_bytes(DType::Q8_0, n_in));
  quantize_activation_row(DType::Q8_0, x.data(), n_in, act.data());
  const auto* w = reinterpret_cast<const BlockQ8_0*>(t.data);
  const auto* a = reinterpret_cast<const BlockQ8_0*>(act.data());
  float want = 0;
  for (int64_t b = 0; b < n_in / 32; ++b) {
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) s += w[b].qs[j] * a[b].qs[j];
    want = std::fma(static_cast<float>(s), f16_to_f32(w[b].d) * f16_to_f32(a[b].d), want);
  }
  const float got = reference_row_dot(DType::Q8_0)(t.data, act.data(), n_in);
  EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want));
  set_sum_order(SumOrder::kVecDot);
  EXPECT_NE(reference_row_dot(DType::Q8_0)(t.data, act.data(), n_in), want);  // eight lanes round differently here
}

}  // namespace
}  // namespace lowbit
