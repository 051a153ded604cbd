// The row quantizers are compiled once per SIMD target (Highway, picked at run time). Each gives exactly the
// bytes of the scalar definition it documents (ActivationQuant tests against ggml's own output).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation_quant.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/float_formats.h"
#include "core/float_rows.h"
#include "ops/activation_quant.h"
#include "quant/k_quants.h"
#include "quant/legacy_quants.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;

// max |x_i| over n values (a multiple of the vector length); NaNs are skipped, as a scalar `if (|x| > max)` skips
// them. Four running maxima, so a Q8_K block's sixteen vectors are four short chains rather than one long one.
HWY_INLINE float AbsMax(const float* x, size_t n) {
  const DF d;
  const size_t N = hn::Lanes(d);
  // a where it is larger than m, else m: a NaN in a never replaces m.
  const auto larger = [](hn::Vec<DF> a, hn::Vec<DF> m) { return hn::IfThenElse(hn::Gt(a, m), a, m); };
  const auto abs_at = [&](size_t i) { return hn::Abs(hn::LoadU(d, x + i)); };
  hn::Vec<DF> m[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N)
#pragma GCC unroll 4
    for (size_t c = 0; c < 4; ++c) m[c] = larger(abs_at(i + c * N), m[c]);
  for (; i < n; i += N) m[0] = larger(abs_at(i), m[0]);
  return hn::GetLane(hn::MaxOfLanes(d, larger(larger(m[0], m[1]), larger(m[2], m[3]))));
}

// round(x_i * scale) to nearest, ties to even (cvtps2dq; the same as adding 1.5 * 2^23 for |v| <= 2^22), at most
// 127, as int8 into q: n values, a multiple of the vector length.
HWY_INLINE void RoundScaled(const float* x, float scale, int8_t* q, size_t n) {
  const DF d;
  const DI di;
  const hn::Rebind<int8_t, DI> d8;
  for (size_t i = 0; i < n; i += hn::Lanes(d)) {
    const auto v = hn::Min(hn::NearestInt(hn::Mul(hn::LoadU(d, x + i), hn::Set(d, scale))), hn::Set(di, 127));
    hn::StoreU(hn::DemoteTo(d8, v), d8, q + i);
  }
}

// Blocks whose F16 scales are converted in one row call (core/float_rows.h, the same bits as f32_to_f16 one by
// one, which was a third of a generation call's activation time).
constexpr int64_t kScaleBatch = 32;

// ggml's x86 quantize_row_q8_0: id = 127/amax and round half to even (_mm256_round_ps), not the reference
// quantizer's 1/d and roundf. |x * id| <= 127 (up to rounding).
void QuantizeQ8_0(const float* x, BlockQ8_0* out, int64_t n) {
  float d[kScaleBatch];
  uint16_t half[kScaleBatch];
  for (int64_t b0 = 0; b0 < n / 32; b0 += kScaleBatch) {
    const int64_t nb = std::min(kScaleBatch, n / 32 - b0);
    for (int64_t j = 0; j < nb; ++j) {
      const float* xb = x + (b0 + j) * 32;
      const float amax = AbsMax(xb, 32);
      d[j] = amax / 127.f;
      RoundScaled(xb, amax != 0.0f ? 127.f / amax : 0.0f, out[b0 + j].qs, 32);
    }
    f32_to_f16_row(d, half, nb);
    for (int64_t j = 0; j < nb; ++j) out[b0 + j].d = half[j];
  }
}

// The sums of each 16 of 256 int8 values: psadbw sums eight bytes at a time, taken as unsigned (each value plus
// 128, so a sum of sixteen is 2048 over the signed one). With AbsMax's four chains, QuantizeQ8K of 2048 values
// took 0.41 us instead of 0.71 (one horizontal sum per sixteen, one chain), and a generated token's activations
// 131-133 us instead of 169 (whole r1b-Q2_K, -t 1, both in one process, alternated).
HWY_INLINE void SumsOf16(const int8_t* q, int16_t* sums) {
  const hn::ScalableTag<uint8_t> du8;
  const size_t N = hn::Lanes(du8);
  if (N < 16) {  // HWY_SCALAR: one byte a vector
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[16 * j + i];
      sums[j] = static_cast<int16_t>(sum);
    }
    return;
  }
  alignas(64) uint64_t eights[32];
  const hn::Repartition<uint64_t, decltype(du8)> du64;
  for (size_t i = 0; i < 256; i += N) {
    const auto biased = hn::Xor(hn::LoadU(du8, reinterpret_cast<const uint8_t*>(q) + i), hn::Set(du8, 0x80));
    hn::Store(hn::SumsOf8(biased), du64, eights + i / 8);
  }
  for (int j = 0; j < 16; ++j)
    sums[j] = static_cast<int16_t>(static_cast<int>(eights[2 * j] + eights[2 * j + 1]) - 2048);
}

// ggml's quantize_row_q8_K: iscale = -127 / (the value of largest magnitude, the first if several), levels
// nearest_int(iscale * x) at most 127, the sum of each 16 levels, d = 1 / iscale. ggml leaves an all-zero block's
// sums untouched; here the whole block is zeroed, so the output never depends on old memory.
void QuantizeQ8K(const float* x, BlockQ8K* out, int64_t n) {
  const DF d;
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    BlockQ8K& y = out[b];
    const float amax = AbsMax(xb, 256);
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof(y));
      continue;
    }
    size_t first = 0;
    for (;; first += hn::Lanes(d)) {
      const intptr_t at = hn::FindFirstTrue(d, hn::Eq(hn::Abs(hn::LoadU(d, xb + first)), hn::Set(d, amax)));
      if (at >= 0) {
        first += static_cast<size_t>(at);
        break;
      }
    }
    const float iscale = -127.f / xb[first];
    RoundScaled(xb, iscale, y.qs, 256);
    SumsOf16(y.qs, y.bsums);
    y.d = 1 / iscale;
  }
}

// Quad sums are eight int32 words a vector (AVX2 up; four on SSE4): exact integers, so every target gives the
// scalar loop's values.
using DQuad = hn::CappedTag<int32_t, 8>;

// The sum of the four signed bytes of each int32 word (values 4l..4l+3 of a 32-value group in word l): each byte
// sign-extended by a shift pair.
HWY_INLINE hn::Vec<DQuad> QuadOf(hn::Vec<DQuad> w) {
  return hn::Add(hn::Add(hn::ShiftRight<24>(hn::ShiftLeft<24>(w)), hn::ShiftRight<24>(hn::ShiftLeft<16>(w))),
                 hn::Add(hn::ShiftRight<24>(hn::ShiftLeft<8>(w)), hn::ShiftRight<24>(w)));
}

// Each Q8_0/Q8_1 block's eight quad sums times -16, and their total.
void QuadSums(const uint8_t* row, size_t block_bytes, size_t qs_offset, size_t n_blocks, int32_t* quad_starts,
              int32_t* totals) {
  const DQuad d;
  const size_t lanes = hn::Lanes(d);
  for (size_t b = 0; b < n_blocks; ++b) {
    const auto* words = reinterpret_cast<const int32_t*>(row + b * block_bytes + qs_offset);
    auto total = hn::Zero(d);
    for (size_t l = 0; l < 8; l += lanes) {
      const auto quad = QuadOf(hn::LoadU(d, words + l));
      hn::StoreU(hn::Mul(quad, hn::Set(d, -16)), d, quad_starts + 8 * b + l);
      total = hn::Add(total, quad);
    }
    totals[b] = hn::GetLane(hn::SumOfLanes(d, total));
  }
}

// Each Q8_K super-block's quad sums A(g, l) (values 32g+4l..32g+4l+3) times -2^bits for each of
// kQuadPairsOffsetBits, as the int16 pairs (-2^bits A(2w, l), -2^bits A(2w+1, l)) in word 8w + l of that factor's
// table (|32 A| <= 2^14): what the Q3_K and Q6_K tiles add to their level products to take away the levels' offset,
// once per call instead of once per row tile.
void QuadPairsQ8K(const BlockQ8K* blocks, size_t n_blocks, int32_t* pairs) {
  const DQuad d;
  for (size_t b = 0; b < n_blocks; ++b) {
    const auto* words = reinterpret_cast<const int32_t*>(blocks[b].qs);
    for (size_t w = 0; w < 4; ++w)
      for (size_t l = 0; l < 8; l += hn::Lanes(d)) {
        const auto even = QuadOf(hn::LoadU(d, words + 16 * w + l));
        const auto odd = QuadOf(hn::LoadU(d, words + 16 * w + 8 + l));
        for (int table = 0; table < kQuadPairsTables; ++table) {
          const auto factor = hn::Set(d, -(1 << kQuadPairsOffsetBits[table]));
          const auto low = hn::And(hn::Mul(even, factor), hn::Set(d, 0xFFFF));
          hn::StoreU(hn::Or(low, hn::ShiftLeft<16>(hn::Mul(odd, factor))), d,
                     pairs + kQuadPairsWords * b + 32 * table + 8 * w + l);
        }
      }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "ops/packed_weight.h"
#include "util/parallel.h"

namespace lowbit {

HWY_EXPORT(QuantizeQ8_0);
HWY_EXPORT(QuantizeQ8K);
HWY_EXPORT(QuadSums);
HWY_EXPORT(QuadPairsQ8K);

void quantize_activation_q8_0(const float* x, BlockQ8_0* out, int64_t n) { HWY_DYNAMIC_DISPATCH(QuantizeQ8_0)(x, out, n); }

void quantize_activation_q8_k(const float* x, BlockQ8K* out, int64_t n) { HWY_DYNAMIC_DISPATCH(QuantizeQ8K)(x, out, n); }

void quantize_activation_q8_1(const float* x, BlockQ8_1* out, int64_t n) {
  BlockQ8_0 b0;
  for (int64_t b = 0; b < n / 32; ++b) {
    quantize_activation_q8_0(x + b * 32, &b0, 32);
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b0.qs[j];
    out[b].d = b0.d;
    out[b].s = f32_to_f16(amax / 127.f * static_cast<float>(sum));  // the unrounded d, as ggml
    std::memcpy(out[b].qs, b0.qs, 32);
  }
}

void quantize_activation_row(DType type, const float* x, int64_t n, void* out) {
  if (type == DType::Q8_0) quantize_activation_q8_0(x, static_cast<BlockQ8_0*>(out), n);
  else if (type == DType::Q8_1) quantize_activation_q8_1(x, static_cast<BlockQ8_1*>(out), n);
  else if (type == DType::Q8_K) quantize_activation_q8_k(x, static_cast<BlockQ8K*>(out), n);
  else if (type == DType::F32) std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
  else quantize_rows(type, x, out, 1, n);
}

void QuantizedActivations::reset(DType type, int64_t n_tokens, int64_t n_in) {
  borrowed_ = nullptr;
  shape(type, n_tokens, n_in);
  storage_.resize(row_bytes_ * static_cast<size_t>(n_tokens) + 64);
}

void QuantizedActivations::shape(DType type, int64_t n_tokens, int64_t n_in) {
  type_ = type;
  n_tokens_ = n_tokens, n_in_shape_ = n_in;
  row_bytes_ = lowbit::row_bytes(type, n_in);
  const bool sums = type == DType::Q8_0 || type == DType::Q8_1, floats = type == DType::F16;
  sums_per_row_ = sums ? static_cast<size_t>(n_in / 32) * 8 : 0;
  super_blocks_per_row_ = type == DType::Q8_K ? static_cast<size_t>(n_in / 256) : 0;
  quad_pairs_.resize(super_blocks_per_row_ * kQuadPairsWords * static_cast<size_t>(n_tokens));
  paired_qs_.resize(super_blocks_per_row_ * 256 * static_cast<size_t>(n_tokens));
  quad_starts_.resize(sums_per_row_ * static_cast<size_t>(n_tokens));
  scales_.resize(sums_per_row_ / 8 * static_cast<size_t>(n_tokens));
  block_sums_.resize(scales_.size());
  n_in_ = floats ? static_cast<size_t>(n_in) : 0;
  values_.resize(n_in_ * static_cast<size_t>(n_tokens));
}

void QuantizedActivations::compute_kernel_extras(int64_t t) {
  if (!values_.empty()) {  // F16: the type table's conversion
    type_traits(type_).to_float(row(t), values_.data() + static_cast<size_t>(t) * n_in_, static_cast<int64_t>(n_in_));
    return;
  }
  if (!quad_pairs_.empty()) {
    const auto* blocks = reinterpret_cast<const BlockQ8K*>(row(t));
    const size_t n_blocks = super_blocks_per_row_;
    int32_t* pairs = quad_pairs_.data() + static_cast<size_t>(t) * n_blocks * kQuadPairsWords;
    HWY_DYNAMIC_DISPATCH(QuadPairsQ8K)(blocks, n_blocks, pairs);
    auto* paired = reinterpret_cast<uint8_t*>(paired_qs_.data()) + static_cast<size_t>(t) * n_blocks * 256;
    for (size_t b = 0; b < n_blocks; ++b)
      for (size_t w = 0; w < 4; ++w)
        pair_group_bytes(reinterpret_cast<const uint8_t*>(blocks[b].qs) + 64 * w, paired + 256 * b + 64 * w);
    return;
  }
  if (quad_starts_.empty()) return;
  const size_t block_bytes = type_traits(type_).block_bytes, qs_offset = block_bytes - 32;  // d first, qs last
  const uint8_t* r = row(t);
  const size_t n_blocks = sums_per_row_ / 8;
  int32_t* out = quad_starts_.data() + static_cast<size_t>(t) * sums_per_row_;
  float* scales = scales_.data() + static_cast<size_t>(t) * n_blocks;
  int32_t* totals = block_sums_.data() + static_cast<size_t>(t) * n_blocks;
  HWY_DYNAMIC_DISPATCH(QuadSums)(r, block_bytes, qs_offset, n_blocks, out, totals);
  constexpr size_t kAtOnce = 64;  // blocks' scales converted by one row call
  uint16_t half[kAtOnce];
  for (size_t b0 = 0; b0 < n_blocks; b0 += kAtOnce) {
    const size_t nb = std::min(kAtOnce, n_blocks - b0);
    for (size_t j = 0; j < nb; ++j) std::memcpy(&half[j], r + (b0 + j) * block_bytes, 2);
    f16_to_f32_row(half, scales + b0, static_cast<int64_t>(nb));
  }
}

void QuantizedActivations::mirror(const QuantizedActivations& src) {
  shape(src.type_, src.n_tokens_, src.n_in_shape_);
  borrowed_ = src.base();
  for (int64_t t = 0; t < src.n_tokens_; ++t) compute_kernel_extras(t);
}

uint8_t* QuantizedActivations::base() const {
  if (borrowed_) return const_cast<uint8_t*>(borrowed_);
  auto p = reinterpret_cast<uintptr_t>(storage_.data());
  return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t{63});
}

void quantize_activations(QuantizedActivations& acts, DType type, const float* x, int64_t n_tokens, int64_t n_in, int threads) {
  acts.reset(type, n_tokens, n_in);
  // Small batches (generation) are not worth waking threads for.
  const int t = n_tokens * n_in >= (int64_t{1} << 16) ? threads : 1;
  parallel_for(n_tokens, t, [&](int64_t i) {
    quantize_activation_row(type, x + i * n_in, n_in, acts.row(i));
    acts.compute_kernel_extras(i);
  });
}

QuantizedActivations quantize_activations(DType type, const float* x, int64_t n_tokens, int64_t n_in, int threads) {
  QuantizedActivations acts;
  quantize_activations(acts, type, x, n_tokens, n_in, threads);
  return acts;
}

}  // namespace lowbit
#endif  // HWY_ONCE
