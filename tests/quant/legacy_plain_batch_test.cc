// The batched plain roundings (legacy_plain_batch.cc) against the one-block scalar functions, block by block,
// on ordinary blocks and on the cases where element order decides the result: a magnitude shared by x and -x
// (the first one is the peak), zero extremes with +0 and -0 in either order (the first zero's sign is kept),
// all-zero blocks, halves exactly between two levels, and tiny scales.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "quant/legacy_quants.h"

namespace lowbit::legacy {
namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

std::vector<float> make_blocks(int n_blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n_blocks) * kLegacyBlock);
  for (int b = 0; b < n_blocks; ++b) {
    float* v = x.data() + static_cast<size_t>(b) * kLegacyBlock;
    for (int i = 0; i < kLegacyBlock; ++i) v[i] = normal(rng);
    switch (b % 9) {
      case 1: v[3] = 2.5f, v[20] = -2.5f; break;                              // equal magnitudes, + first
      case 2: v[3] = -2.5f, v[20] = 2.5f; break;                              // equal magnitudes, - first
      case 3: for (int i = 0; i < kLegacyBlock; ++i) v[i] = i % 2 ? 0.f : -0.f; break;
      case 4: for (int i = 0; i < kLegacyBlock; ++i) v[i] = std::fabs(v[i]); v[7] = -0.f, v[9] = 0.f; break;
      case 5: for (int i = 0; i < kLegacyBlock; ++i) v[i] = -std::fabs(v[i]); v[5] = 0.f, v[6] = -0.f; break;
      case 6: for (int i = 0; i < kLegacyBlock; ++i) v[i] = static_cast<float>(i % 8 - 4) * 0.25f; break;
      case 7: for (int i = 0; i < kLegacyBlock; ++i) v[i] *= 1e-30f; break;
      default: break;
    }
  }
  return x;
}

constexpr int kBlocks = 45;

TEST(LegacyPlainBatch, SymmetricMatchesOneBlockRounding) {
  const std::vector<float> x = make_blocks(kBlocks, 7);
  for (int nmax : {8, 16}) {
    std::vector<uint8_t> levels(x.size());
    std::vector<float> d(kBlocks);
    symmetric_plain_batch(x.data(), kBlocks, nmax, levels.data(), d.data());
    for (int b = 0; b < kBlocks; ++b) {
      uint8_t want[kLegacyBlock];
      EXPECT_EQ(bits(d[b]), bits(symmetric_plain(x.data() + b * kLegacyBlock, nmax, want))) << nmax << " block " << b;
      for (int i = 0; i < kLegacyBlock; ++i) ASSERT_EQ(levels[b * kLegacyBlock + i], want[i]) << "block " << b;
    }
  }
}

TEST(LegacyPlainBatch, AffineMatchesOneBlockRounding) {
  const std::vector<float> x = make_blocks(kBlocks, 8);
  for (int nmax : {15, 31}) {
    std::vector<uint8_t> levels(x.size());
    std::vector<ScaleAndMin> s(kBlocks);
    affine_plain_batch(x.data(), kBlocks, nmax, levels.data(), s.data());
    for (int b = 0; b < kBlocks; ++b) {
      uint8_t want[kLegacyBlock];
      const ScaleAndMin w = affine_plain(x.data() + b * kLegacyBlock, nmax, want);
      EXPECT_EQ(bits(s[b].d), bits(w.d)) << nmax << " block " << b;
      EXPECT_EQ(bits(s[b].m), bits(w.m)) << nmax << " block " << b;
      for (int i = 0; i < kLegacyBlock; ++i) ASSERT_EQ(levels[b * kLegacyBlock + i], want[i]) << "block " << b;
    }
  }
}

TEST(LegacyPlainBatch, Q8MatchesOneBlockRounding) {
  const std::vector<float> x = make_blocks(kBlocks, 9);
  std::vector<int8_t> qs(x.size());
  std::vector<float> d(kBlocks);
  q8_0_plain_batch(x.data(), kBlocks, qs.data(), d.data());
  for (int b = 0; b < kBlocks; ++b) {
    int8_t want[kLegacyBlock];
    EXPECT_EQ(bits(d[b]), bits(q8_round_block(x.data() + b * kLegacyBlock, want))) << "block " << b;
    for (int i = 0; i < kLegacyBlock; ++i) ASSERT_EQ(qs[b * kLegacyBlock + i], want[i]) << "block " << b;
  }
}

}  // namespace
}  // namespace lowbit::legacy
