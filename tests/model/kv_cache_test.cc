// The engine's KV cache: positions stored one by one land where ops/attention.h reads them (each head's K in key
// blocks and V by position, each layer its own), checked against attention over arrays laid out by hand the other
// way (the heads side by side); the F16 cache gives the same bits as F32 arrays of the F16-rounded values, in half
// the bytes.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <vector>

#include "core/float_formats.h"

namespace lowbit {
namespace {

TEST(KvCache, AttendsOverWhatWasStoredWhereAttentionReadsIt) {
  constexpr int64_t kLayers = 3, kCtx = 40, kHeads = 6, kHeadsKv = 2, kHeadDim = 24, kKvDim = kHeadsKv * kHeadDim;
  constexpr int64_t kPast = 30, kTokens = 3, kKeys = kPast + kTokens;
  constexpr int64_t kBlocks = (kCtx + kKeyBlock - 1) / kKeyBlock;
  // The hand-made arrays' layout: each key block and position holds every head's dimensions side by side.
  const AttentionShape shape{kHeads, kHeadsKv, kHeadDim, kHeads * kHeadDim, kKvDim * kKeyBlock, kHeadDim * kKeyBlock, kKvDim, kHeadDim};
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(kTokens * kHeads * kHeadDim));
  for (float& x : q) x = 2.0f * normal(rng);
  // Per layer, random k and v rows stored position by position, and the same values laid out by hand.
  std::vector<std::vector<float>> k_by_hand(kLayers), k_held(kLayers), v_by_hand(kLayers), v_held(kLayers);
  KvCache f32(kLayers, kCtx, kHeadsKv, kHeadDim, false), f16(kLayers, kCtx, kHeadsKv, kHeadDim, true);
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    for (auto* a : {&k_by_hand, &k_held}) (*a)[layer].assign(static_cast<size_t>(kBlocks * kKeyBlock * kKvDim), 0.0f);
    for (auto* a : {&v_by_hand, &v_held}) (*a)[layer].assign(static_cast<size_t>(kCtx * kKvDim), 0.0f);
    for (int64_t pos = 0; pos < kKeys; ++pos) {
      std::vector<float> k(kKvDim), v(kKvDim);
      for (float& x : k) x = normal(rng);
      for (float& x : v) x = normal(rng);
      f32.store(layer, pos, k.data(), v.data());
      f16.store(layer, pos, k.data(), v.data());
      for (int64_t i = 0; i < kKvDim; ++i) {
        const auto ki = static_cast<size_t>(pos / kKeyBlock * kKvDim * kKeyBlock + i * kKeyBlock + pos % kKeyBlock);
        const auto vi = static_cast<size_t>(pos * kKvDim + i);
        k_by_hand[layer][ki] = k[i], v_by_hand[layer][vi] = v[i];
        k_held[layer][ki] = f16_to_f32(f32_to_f16(k[i])), v_held[layer][vi] = f16_to_f32(f32_to_f16(v[i]));
      }
    }
  }
  EXPECT_EQ(f32.bytes(), size_t{2 * kLayers * kBlocks * kKeyBlock * kKvDim * 4});
  EXPECT_EQ(f16.bytes(), f32.bytes() / 2);
  for (int64_t layer = 0; layer < kLayers; ++layer)
    for (bool round_f16 : {false, true}) {
      const size_t n = q.size();
      std::vector<float> want(n), got(n, -1.0f), want16(n), got16(n, -1.0f);
      attention(q.data(), kTokens, kPast, k_by_hand[layer].data(), v_by_hand[layer].data(), shape, round_f16, want.data(), 1);
      f32.attend(layer, q.data(), kTokens, kPast, kHeads, round_f16, got.data(), 1);
      attention(q.data(), kTokens, kPast, k_held[layer].data(), v_held[layer].data(), shape, true, want16.data(), 1);
      f16.attend(layer, q.data(), kTokens, kPast, kHeads, round_f16, got16.data(), 2);  // F16 rounds either way
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << "layer " << layer << ", F32, output " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(got16[i]), std::bit_cast<uint32_t>(want16[i])) << "layer " << layer << ", F16, output " << i;
      }
    }
}

}  // namespace
}  // namespace lowbit
