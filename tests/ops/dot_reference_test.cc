// The BF16 reference dot against AVX512-BF16's vdpbf16ps itself, which it is written to equal: the instruction's
// rounding and flushing are documented in words only, so the reference's reading of them (bf16_step in
// ops/dot_reference.cc) is checked here on the hardware, on inputs chosen to land on every case.
#include "ops/dot_reference.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/float_formats.h"
#include "util/cpu_features.h"

namespace lowbit {
namespace {

uint16_t bf16_bits(float v) { return static_cast<uint16_t>(std::bit_cast<uint32_t>(v) >> 16); }  // v is bf16-exact

// The row's dot as the kernels' lanes compute it, with the instruction: eight lanes of one 256-bit vdpbf16ps per
// 16 values, then the pairwise sum and the tail (FMAs), all under MXCSR's FTZ and DAZ as the kernels run them.
[[gnu::target("avx512bf16,avx512vl,avx512f,fma")]] float instruction_dot(const uint16_t* w, const uint16_t* a, int64_t n) {
  const unsigned saved = _mm_getcsr();
  _mm_setcsr(saved | 0x8040);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    acc = _mm256_dpbf16_ps(acc, reinterpret_cast<__m256bh>(wv), reinterpret_cast<__m256bh>(av));
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, acc);
  __m128 tail = _mm_setzero_ps();
  for (; i < n; ++i) tail = _mm_fmadd_ss(_mm_set_ss(bf16_to_f32(w[i])), _mm_set_ss(bf16_to_f32(a[i])), tail);
  const auto add = [](float x, float y) { return _mm_cvtss_f32(_mm_add_ss(_mm_set_ss(x), _mm_set_ss(y))); };
  const float sum = add(add(add(add(l[0], l[4]), add(l[2], l[6])), add(add(l[1], l[5]), add(l[3], l[7]))), _mm_cvtss_f32(tail));
  _mm_setcsr(saved);
  return sum;
}

// One lane's two steps, lane 0 of a 16-value row: acc from the first pair, then the second pair.
struct TwoPairs {
  const char* what;
  float w_even0, a_even0, w_odd0, a_odd0, w_even1, a_even1, w_odd1, a_odd1;
  float want;
};

TEST(DotReference, Bf16StepsRoundAndFlushAsVdpbf16ps) {
  const float m = std::numeric_limits<float>::min();  // 2^-126
  const auto p2 = [](int e) { return std::ldexp(1.0f, e); };
  const TwoPairs cases[] = {
      // The odd value goes first: 2^-130 alone is flushed before 2^-126 is added; even first it would stay.
      {"odd step first, flushed", p2(-63), p2(-63), p2(-65), p2(-65), 0, 0, 0, 0, m},
      {"even step after, kept", p2(-65), p2(-65), p2(-63), p2(-63), 0, 0, 0, 0, m + p2(-130)},
      {"subnormal weight read as zero", p2(-127) * 1.5f, 1.0f, 0, 0, 0, 0, 0, 0, 0.0f},
      {"subnormal activation read as zero", 1.0f, p2(-130), 0, 0, 0, 0, 0, 0, 0.0f},
      {"negative underflow flushed", -p2(-64), p2(-66), 0, 0, 0, 0, 0, 0, 0.0f},  // -0 in its lane, + 0 at the end
      // acc = 2^-126 + 2^-149, then - 1.5 * 2^-149: exactly FLT_MIN - 2^-150, which rounds to 24 bits as itself,
      // below FLT_MIN: flushed (the correctly rounded subnormal would have been FLT_MIN, a tie to even).
      {"tiny after rounding: flushed", p2(-75), p2(-74), p2(-63), p2(-63), 0, 0, -1.5f * p2(-75), p2(-74), 0.0f},
      // - 1.25 * 2^-149 instead: FLT_MIN - 2^-151, the tie, rounds to FLT_MIN and stays.
      {"rounds up to FLT_MIN: kept", p2(-75), p2(-74), p2(-63), p2(-63), 0, 0, -1.25f * p2(-75), p2(-74), m},
  };
  for (const TwoPairs& c : cases) {
    std::vector<uint16_t> w(32, 0), a(32, 0);
    w[0] = bf16_bits(c.w_even0), a[0] = bf16_bits(c.a_even0), w[1] = bf16_bits(c.w_odd0), a[1] = bf16_bits(c.a_odd0);
    w[16] = bf16_bits(c.w_even1), a[16] = bf16_bits(c.a_even1), w[17] = bf16_bits(c.w_odd1), a[17] = bf16_bits(c.a_odd1);
    const float got = reference_row_dot(DType::BF16)(w.data(), a.data(), 32);
    EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(c.want)) << c.what << ": " << got;
    if (cpu_has_avx512_bf16()) {
      const float hw = instruction_dot(w.data(), a.data(), 32);
      EXPECT_EQ(std::bit_cast<uint32_t>(hw), std::bit_cast<uint32_t>(c.want)) << c.what << " (the instruction): " << hw;
    }
  }
}

// Random rows whose sums hover around FLT_MIN (underflows, flushes, subnormal inputs, cancellation), and ordinary
// ones: the reference equals the instruction bit for bit.
TEST(DotReference, Bf16EqualsVdpbf16psOnRandomRows) {
  if (!cpu_has_avx512_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16 to compare with";
  std::mt19937 rng(7);
  const auto value = [&](int exponent_center, int spread) {
    const int e = exponent_center + static_cast<int>(rng() % (2 * spread + 1)) - spread;
    const float mantissa = 1.0f + static_cast<float>(rng() % 128) / 128.0f;
    return bf16_bits((rng() & 1 ? -1.0f : 1.0f) * std::ldexp(mantissa, e));
  };
  // The same order without the flushing, to count the rows where it mattered.
  const auto unflushed_dot = [](const std::vector<uint16_t>& w, const std::vector<uint16_t>& a) {
    float l[8] = {}, tail = 0;
    size_t i = 0;
    for (; i + 16 <= w.size(); i += 16)
      for (size_t k = 0; k < 8; ++k) {
        l[k] = std::fma(bf16_to_f32(w[i + 2 * k + 1]), bf16_to_f32(a[i + 2 * k + 1]), l[k]);
        l[k] = std::fma(bf16_to_f32(w[i + 2 * k]), bf16_to_f32(a[i + 2 * k]), l[k]);
      }
    for (; i < w.size(); ++i) tail = std::fma(bf16_to_f32(w[i]), bf16_to_f32(a[i]), tail);
    return (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))) + tail;
  };
  int flush_mattered = 0;
  for (int row = 0; row < 4000; ++row) {
    const bool tiny = row % 2 == 0;
    const int64_t n = 16 * (1 + row % 8) + row % 3;  // whole units and a tail
    std::vector<uint16_t> w(static_cast<size_t>(n)), a(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] = tiny ? value(-64, 6) : value(0, 8);
      a[i] = tiny ? value(-63, 6) : value(0, 8);
    }
    const float want = instruction_dot(w.data(), a.data(), n);
    const float got = reference_row_dot(DType::BF16)(w.data(), a.data(), n);
    ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << "row " << row << ": " << got << " vs " << want;
    if (unflushed_dot(w, a) != want) ++flush_mattered;
  }
  EXPECT_GT(flush_mattered, 1000);  // most tiny rows reach the flushing cases
}

}  // namespace
}  // namespace lowbit
