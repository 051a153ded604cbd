// The batched searches (quant_search.h, legacy_quants.h) against their scalar functions, group by group: every
// level and every scale bit must agree. Inputs mix ordinary groups with the edge cases the lanes must handle
// apart from their neighbours: all-zero groups, constant groups, all-positive and all-negative groups, tiny
// values, a single outlier, zero weights, and group counts that leave a partly filled last batch.
#include "quant/quant_search.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "quant/legacy_quants.h"

namespace lowbit {
namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

// n_groups groups of n values; group g's kind is g % 8.
std::vector<float> make_groups(int n_groups, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n_groups) * n);
  for (int g = 0; g < n_groups; ++g) {
    float* v = x.data() + static_cast<size_t>(g) * n;
    const float gain = std::exp(normal(rng));
    for (int i = 0; i < n; ++i) v[i] = gain * normal(rng);
    switch (g % 8) {
      case 1: for (int i = 0; i < n; ++i) v[i] = 0.f; break;
      case 2: for (int i = 0; i < n; ++i) v[i] = 0.37f; break;
      case 3: for (int i = 0; i < n; ++i) v[i] = std::fabs(v[i]); break;
      case 4: for (int i = 0; i < n; ++i) v[i] = -std::fabs(v[i]); break;
      case 5: for (int i = 0; i < n; ++i) v[i] *= 1e-12f; break;
      case 6: v[n / 2] = 40.f * gain; break;
      default: break;
    }
  }
  return x;
}

std::vector<float> make_weights(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0.f, 3.f);
  std::vector<float> w(count);
  for (size_t i = 0; i < count; ++i) w[i] = i % 37 == 5 ? 0.f : uniform(rng);
  // One group of all-zero weights (the unused-imatrix-columns case).
  for (size_t i = 0; i < std::min<size_t>(count, 16); ++i) w[i] = 0.f;
  return w;
}

struct ScaleMinCase {
  int n, nmax;
  float rmin, rdelta;
  int nstep;
  bool use_mad, weighted;
};

class ScaleMinBatch : public testing::TestWithParam<ScaleMinCase> {};

TEST_P(ScaleMinBatch, MatchesScalarSearchPerGroup) {
  const ScaleMinCase c = GetParam();
  for (int n_groups : {1, 7, 16, 37}) {
    const std::vector<float> x = make_groups(n_groups, c.n, 11u + n_groups);
    std::vector<float> w = make_weights(x.size(), 5u + n_groups);
    if (!c.weighted) w.clear();
    std::vector<uint8_t> levels(x.size(), 0xEE);
    std::vector<float> scales(n_groups), neg_mins(n_groups);
    make_qkx_quants_batch(n_groups, c.n, c.nmax, x.data(), c.weighted ? w.data() : nullptr, levels.data(),
                          scales.data(), neg_mins.data(), c.rmin, c.rdelta, c.nstep, c.use_mad);
    for (int g = 0; g < n_groups; ++g) {
      const float* xg = x.data() + g * c.n;
      std::vector<uint8_t> want(c.n), scratch(c.n);
      float want_neg_min = 0;
      const float want_scale = make_qkx3_quants(c.n, c.nmax, xg, c.weighted ? w.data() + g * c.n : nullptr,
                                                want.data(), &want_neg_min, scratch.data(), c.rmin, c.rdelta,
                                                c.nstep, c.use_mad);
      EXPECT_EQ(bits(scales[g]), bits(want_scale)) << "group " << g << " of " << n_groups;
      EXPECT_EQ(bits(neg_mins[g]), bits(want_neg_min)) << "group " << g << " of " << n_groups;
      for (int i = 0; i < c.n; ++i) ASSERT_EQ(levels[g * c.n + i], want[i]) << "group " << g << " value " << i;
    }
  }
}

// The parameter sets the quantizers use: Q2_K (plain and weighted), Q4_K, Q5_K, Q4_1/Q5_1 weighted.
INSTANTIATE_TEST_SUITE_P(Quantizers, ScaleMinBatch,
                         testing::Values(ScaleMinCase{16, 3, -0.5f, 0.1f, 15, true, true},
                                         ScaleMinCase{16, 3, -0.9f, 0.05f, 36, false, true},
                                         ScaleMinCase{32, 15, -1.f, 0.1f, 20, false, true},
                                         ScaleMinCase{32, 31, -0.5f, 0.1f, 15, false, true},
                                         ScaleMinCase{32, 15, -0.9f, 0.05f, 36, false, false},
                                         ScaleMinCase{32, 31, -0.9f, 0.05f, 0, false, false}));

TEST(SymmetricBatch, MatchesScalarMakeQxQuantsPerGroup) {
  for (const auto& [n, nmax] : {std::pair{16, 32}, {16, 4}, {32, 8}, {32, 16}}) {
    for (bool weighted : {false, true}) {
      for (int n_groups : {1, 9, 33}) {
        const std::vector<float> x = make_groups(n_groups, n, 3u + n_groups);
        const std::vector<float> w = make_weights(x.size(), 9u + n_groups);
        std::vector<int8_t> levels(x.size(), 99);
        std::vector<float> scales(n_groups);
        make_qx_quants_batch(n_groups, n, nmax, x.data(), weighted ? w.data() : nullptr, levels.data(), scales.data());
        for (int g = 0; g < n_groups; ++g) {
          std::vector<int8_t> want(n);
          const float want_scale =
              make_qx_quants(n, nmax, x.data() + g * n, want.data(), 1, weighted ? w.data() + g * n : nullptr);
          EXPECT_EQ(bits(scales[g]), bits(want_scale)) << n << "/" << nmax << " group " << g;
          for (int i = 0; i < n; ++i) ASSERT_EQ(levels[g * n + i], want[i]) << n << "/" << nmax << " group " << g;
        }
      }
    }
  }
}

TEST(Q3Batch, MatchesScalarMakeQ3QuantsPerGroup) {
  for (int n_groups : {1, 5, 16, 35}) {
    const std::vector<float> x = make_groups(n_groups, 16, 17u + n_groups);
    std::vector<int8_t> levels(x.size(), 99);
    std::vector<float> scales(n_groups);
    make_q3_quants_batch(n_groups, 16, 4, x.data(), levels.data(), scales.data());
    for (int g = 0; g < n_groups; ++g) {
      std::vector<int8_t> want(16);
      const float want_scale = make_q3_quants(16, 4, x.data() + g * 16, want.data(), true);
      EXPECT_EQ(bits(scales[g]), bits(want_scale)) << "group " << g;
      for (int i = 0; i < 16; ++i) ASSERT_EQ(levels[g * 16 + i], want[i]) << "group " << g << " value " << i;
    }
  }
}

TEST(Iq4Batch, MatchesScalarBlockSearchPerBlock) {
  for (bool weighted : {false, true}) {
    for (int n_blocks : {1, 6, 16, 41}) {
      const std::vector<float> x = make_groups(n_blocks, 32, 23u + n_blocks);
      std::vector<float> w = make_weights(x.size(), 29u + n_blocks);
      if (!weighted)
        for (size_t i = 0; i < x.size(); ++i) w[i] = x[i] * x[i];
      std::vector<float> scales(n_blocks);
      legacy::iq4nl_block_scales(n_blocks, x.data(), weighted ? w.data() : nullptr, scales.data());
      for (int b = 0; b < n_blocks; ++b) {
        EXPECT_EQ(bits(scales[b]), bits(legacy::iq4nl_block_scale(x.data() + b * 32, w.data() + b * 32)))
            << "block " << b << (weighted ? " weighted" : "");
      }
    }
  }
}

// Every table midpoint (a tie, which goes to the larger value) and its neighbours, values beyond both ends, zeros
// of both signs, and a tail shorter than a vector.
TEST(Iq4Batch, LevelsMatchScalarNearestLevel) {
  std::vector<float> x;
  for (int k = 0; k + 1 < 16; ++k) {
    const float mid = (static_cast<float>(kIq4nlValues[k]) + static_cast<float>(kIq4nlValues[k + 1])) / 2;
    for (float v : {mid, std::nextafter(mid, -1000.f), std::nextafter(mid, 1000.f)}) x.push_back(v);
  }
  for (float v : {-1e6f, -128.f, -127.f, -0.f, 0.f, 113.f, 114.f, 1e6f}) x.push_back(v);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> uniform(-140.f, 140.f);
  while (x.size() < 203) x.push_back(uniform(rng));
  for (float inverse_scale : {1.f, 0.37f, -2.5f, 0.f}) {
    std::vector<uint8_t> levels(x.size(), 0xEE);
    legacy::iq4nl_levels(x.data(), static_cast<int64_t>(x.size()), inverse_scale, levels.data());
    for (size_t j = 0; j < x.size(); ++j) {
      ASSERT_EQ(levels[j], legacy::iq4nl_nearest_level(inverse_scale * x[j])) << x[j] << " * " << inverse_scale;
    }
  }
}

}  // namespace
}  // namespace lowbit
