#include "io/gptq_pack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "algo/rtn.h"
#include "core/float_formats.h"
#include "util/error.h"

namespace lowbit {
namespace {

// A layer with given integers, zeros and scales 1 (so dequantization is exact in fp16).
QuantizedLinear layer(int64_t n_out, int64_t n_in, int bits, int group_size) {
  QuantizedLinear ql{.n_in = n_in, .n_out = n_out, .bits = bits, .group_size = group_size};
  const int64_t gl = group_size < 0 ? n_in : group_size;
  const int64_t ng = (n_in + gl - 1) / gl;
  ql.q.assign(static_cast<size_t>(n_out * n_in), 0);
  ql.scales.assign(static_cast<size_t>(ng * n_out), 1.f);
  ql.zeros.assign(ql.scales.size(), 1.f);
  for (int64_t i = 0; i < n_in; ++i) ql.g_idx.push_back(static_cast<int32_t>(i / gl));
  return ql;
}

uint32_t u(int32_t v) { return static_cast<uint32_t>(v); }

TEST(GptqPack, FourBitWordsByHand) {
  // q[o][i] = (i + o) % 16: column o of qweight row r holds inputs 8r..8r+7, lowest nibble first.
  QuantizedLinear ql = layer(8, 32, 4, -1);
  for (int o = 0; o < 8; ++o)
    for (int i = 0; i < 32; ++i) ql.q[o * 32 + i] = static_cast<uint8_t>((i + o) % 16);
  for (int o = 0; o < 8; ++o) ql.zeros[o] = static_cast<float>(o + 1);  // v1 stores 0..7
  const GptqPacked p = pack_gptq(ql);
  ASSERT_EQ(p.qweight.size(), 4u * 8u);
  EXPECT_EQ(u(p.qweight[0 * 8 + 0]), 0x76543210u);  // inputs 0..7 of output 0
  EXPECT_EQ(u(p.qweight[0 * 8 + 1]), 0x87654321u);  // inputs 0..7 of output 1
  EXPECT_EQ(u(p.qweight[1 * 8 + 0]), 0xFEDCBA98u);  // inputs 8..15 of output 0
  EXPECT_EQ(u(p.qweight[3 * 8 + 7]), 0x6543210Fu);  // inputs 24..31 of output 7: 31,32..38 mod 16 = F,0..6
  ASSERT_EQ(p.qzeros.size(), 1u);
  EXPECT_EQ(u(p.qzeros[0]), 0x76543210u);  // zeros 1..8 minus 1, packed along the outputs
  EXPECT_EQ(unpack_gptq(p).q, ql.q);
  EXPECT_EQ(unpack_gptq(p).zeros, ql.zeros);
  // v2 stores the zeros as they are.
  EXPECT_EQ(u(pack_gptq(ql, GptqCheckpointFormat::kV2).qzeros[0]), 0x87654321u);
}

TEST(GptqPack, TwoAndEightBitWordsByHand) {
  QuantizedLinear q2 = layer(16, 32, 2, -1);
  for (int o = 0; o < 16; ++o)
    for (int i = 0; i < 32; ++i) q2.q[o * 32 + i] = static_cast<uint8_t>((i + o) % 4);
  const GptqPacked p2 = pack_gptq(q2);
  ASSERT_EQ(p2.qweight.size(), 2u * 16u);
  EXPECT_EQ(u(p2.qweight[0]), 0xE4E4E4E4u);  // 0,1,2,3 -> byte 11100100
  EXPECT_EQ(u(p2.qweight[1]), 0x39393939u);  // 1,2,3,0 -> byte 00111001
  EXPECT_EQ(u(p2.qzeros[0]), 0u);            // all zeros 1 -> stored 0
  EXPECT_EQ(unpack_gptq(p2).q, q2.q);

  QuantizedLinear q8 = layer(4, 32, 8, -1);
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 32; ++i) q8.q[o * 32 + i] = static_cast<uint8_t>(i * 7 + o);
  q8.zeros = {128.f, 1.f, 2.f, 255.f};
  const GptqPacked p8 = pack_gptq(q8);
  ASSERT_EQ(p8.qweight.size(), 8u * 4u);
  EXPECT_EQ(u(p8.qweight[0]), 0x150E0700u);  // inputs 0..3 of output 0: 0, 7, 14, 21
  EXPECT_EQ(u(p8.qweight[1 * 4 + 2]), 0x332C251Eu);  // inputs 4..7 of output 2: 30, 37, 44, 51 = 1E 25 2C 33
  EXPECT_EQ(u(p8.qzeros[0]), 0xFE01007Fu);   // 127, 0, 1, 254
  EXPECT_EQ(unpack_gptq(p8).q, q8.q);
  EXPECT_EQ(unpack_gptq(p8).zeros, q8.zeros);
}

TEST(GptqPack, ThreeBitStraddlesWordsAsAutoGptq) {
  // Inputs 10 and 21 of each run of 32 straddle words: 10 = bits 30,31 of word 0 + bit 0 of word 1;
  // 21 = bit 31 of word 1 + bits 0,1 of word 2.
  QuantizedLinear ql = layer(32, 32, 3, -1);
  auto set = [&](int i, int v) { ql.q[i] = static_cast<uint8_t>(v); };  // output 0
  set(0, 3);   // word0 bits 0-1
  set(10, 5);  // 101: word0 bit 30 set, bit 31 clear; word1 bit 0 set
  set(11, 7);  // word1 bits 1-3 -> 0xE
  set(21, 6);  // 110: word1 bit 31 clear; word2 bits 0-1 = 11
  set(31, 4);  // word2 shift 3*9+2 = 29: bit 31
  const GptqPacked p = pack_gptq(ql);
  ASSERT_EQ(p.qweight.size(), 3u * 32u);
  EXPECT_EQ(u(p.qweight[0 * 32]), 0x40000003u);
  EXPECT_EQ(u(p.qweight[1 * 32]), 0x0000000Fu);
  EXPECT_EQ(u(p.qweight[2 * 32]), 0x80000003u);
  EXPECT_EQ(u(p.qweight[1]), 0u);
  // zeros: output 10 has zero 6 (stored 5), output 21 has zero 7 (stored 6), others 1 (stored 0).
  ql.zeros[10] = 6.f;
  ql.zeros[21] = 7.f;
  const GptqPacked pz = pack_gptq(ql);
  ASSERT_EQ(pz.qzeros.size(), 3u);
  EXPECT_EQ(u(pz.qzeros[0]), 0x40000000u);
  EXPECT_EQ(u(pz.qzeros[1]), 0x00000001u);
  EXPECT_EQ(u(pz.qzeros[2]), 0x00000003u);
  const QuantizedLinear back = unpack_gptq(pz);
  EXPECT_EQ(back.q, ql.q);
  EXPECT_EQ(back.zeros, ql.zeros);
}

TEST(GptqPack, V1RefusesZeroOfZero) {
  QuantizedLinear ql = layer(8, 32, 4, -1);
  ql.zeros[3] = 0.f;
  EXPECT_THROW(pack_gptq(ql), Error);
  EXPECT_NO_THROW(pack_gptq(ql, GptqCheckpointFormat::kV2));
}

// Dequantizes the GPTQ tensors straight from the format description: bit b of the stream of column o is bit
// b % 32 of word b / 32, the words of the column taken in row order.
std::vector<float> reference_dequant_gptq(const GptqPacked& p) {
  const int64_t n_out = p.n_out, zcols = n_out * p.bits / 32;
  auto stream_bit = [](auto word_at, int64_t b) { return (word_at(b / 32) >> (b % 32)) & 1u; };
  std::vector<float> w(static_cast<size_t>(n_out * p.n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    for (int64_t i = 0; i < p.n_in; ++i) {
      uint32_t qv = 0, zv = 0;
      const int64_t g = p.g_idx[i];
      for (int b = 0; b < p.bits; ++b) {
        qv |= stream_bit([&](int64_t r) { return u(p.qweight[r * n_out + o]); }, i * p.bits + b) << b;
        zv |= stream_bit([&](int64_t c) { return u(p.qzeros[g * zcols + c]); }, o * p.bits + b) << b;
      }
      const float scale = f16_to_f32(p.scales[g * n_out + o]);
      w[o * p.n_in + i] = scale * (static_cast<float>(qv) - static_cast<float>(zv + 1));
    }
  }
  return w;
}

std::vector<float> random_weights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.05f);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& x : w) x = nd(rng);
  return w;
}

TEST(GptqPack, RoundTripAndIndependentDequantizer) {
  const int64_t n_out = 64, n_in = 128;
  const auto w = random_weights(n_out * n_in, 7);
  for (int bits : {2, 3, 4, 8}) {
    for (int gs : {-1, 32}) {
      IntQuantConfig cfg;
      cfg.bits = bits;
      cfg.group_size = gs;
      cfg.sym = bits != 3;  // symmetric zeros are never 0, so v1 can hold them; asymmetric 3-bit tested below
      QuantizedLinear ql = rtn_quantize(w.data(), n_out, n_in, cfg);
      for (auto& z : ql.zeros) z = std::max(z, 1.f);  // v1 cannot hold 0
      // Shuffle g_idx as act-order would (a column's group is arbitrary).
      std::mt19937 rng(bits * 100 + gs);
      std::shuffle(ql.g_idx.begin(), ql.g_idx.end(), rng);
      const GptqPacked p = pack_gptq(ql);
      const QuantizedLinear back = unpack_gptq(p);
      EXPECT_EQ(back.q, ql.q) << bits;
      EXPECT_EQ(back.zeros, ql.zeros) << bits;
      EXPECT_EQ(back.g_idx, ql.g_idx) << bits;
      const auto mine = back.dequantize();
      const auto ref = reference_dequant_gptq(p);
      ASSERT_EQ(mine.size(), ref.size());
      for (size_t k = 0; k < ref.size(); ++k) ASSERT_EQ(mine[k], ref[k]) << bits << " " << gs << " " << k;
    }
  }
}

TEST(GptqPack, UnpackRejectsBadSizes) {
  GptqPacked p = pack_gptq(layer(8, 32, 4, -1));
  p.qweight.pop_back();
  EXPECT_THROW(unpack_gptq(p), Error);
  p = pack_gptq(layer(8, 32, 4, -1));
  p.g_idx[5] = 3;  // only one group
  EXPECT_THROW(unpack_gptq(p), Error);
  p = pack_gptq(layer(8, 32, 4, -1));
  p.n_in = int64_t{1} << 40;
  EXPECT_THROW(unpack_gptq(p), Error);
}

TEST(AwqPack, WordsByHand) {
  QuantizedLinear ql = layer(8, 2, 4, -1);
  for (int o = 0; o < 8; ++o) {
    ql.q[o * 2 + 0] = static_cast<uint8_t>(o);
    ql.q[o * 2 + 1] = static_cast<uint8_t>(15 - o);
    ql.zeros[o] = static_cast<float>(8 + o);
  }
  const AwqPacked p = pack_awq_gemm(ql);
  ASSERT_EQ(p.qweight.size(), 2u);
  // Nibble k holds output {0,2,4,6,1,3,5,7}[k].
  EXPECT_EQ(u(p.qweight[0]), 0x75316420u);
  EXPECT_EQ(u(p.qweight[1]), 0x8ACE9BDFu);  // 15 - {0,2,4,6,1,3,5,7} = F,D,B,9,E,C,A,8 from nibble 0
  ASSERT_EQ(p.qzeros.size(), 1u);
  EXPECT_EQ(u(p.qzeros[0]), 0xFDB9ECA8u);
  const QuantizedLinear back = unpack_awq_gemm(p);
  EXPECT_EQ(back.q, ql.q);
  EXPECT_EQ(back.zeros, ql.zeros);
}

TEST(AwqPack, RoundTripAndIndependentDequantizer) {
  const int64_t n_out = 32, n_in = 256;
  const auto w = random_weights(n_out * n_in, 11);
  IntQuantConfig cfg;
  cfg.bits = 4;
  cfg.group_size = 64;
  const QuantizedLinear ql = rtn_quantize(w.data(), n_out, n_in, cfg);
  const AwqPacked p = pack_awq_gemm(ql);
  const QuantizedLinear back = unpack_awq_gemm(p);
  EXPECT_EQ(back.q, ql.q);
  EXPECT_EQ(back.zeros, ql.zeros);
  // From the description: output o sits in word o / 8 at the nibble k with order[k] == o % 8.
  const int inverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  const auto mine = back.dequantize();
  for (int64_t i = 0; i < n_in; ++i) {
    for (int64_t o = 0; o < n_out; ++o) {
      const int64_t g = i / 64, shift = 4 * inverse[o % 8];
      const float qv = static_cast<float>((u(p.qweight[i * (n_out / 8) + o / 8]) >> shift) & 15u);
      const float zv = static_cast<float>((u(p.qzeros[g * (n_out / 8) + o / 8]) >> shift) & 15u);
      const float ref = (qv - zv) * f16_to_f32(p.scales[g * n_out + o]);
      ASSERT_EQ(mine[o * n_in + i], ref) << o << " " << i;
    }
  }
  QuantizedLinear q3 = ql;
  q3.bits = 3;
  EXPECT_THROW(pack_awq_gemm(q3), Error);
}

}  // namespace
}  // namespace lowbit
