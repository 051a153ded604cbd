#include "ops/simd_matmul.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/float_formats.h"
#include "ops/dot_reference.h"
#include "ops/packed_weight.h"
#include "quant/k_quants.h"
#include "quant/legacy_quants.h"
#include "support/every_call_threaded.h"
#include "support/simd_targets.h"
#include "support/weight_matrices.h"
#include "util/error.h"

namespace lowbit {
namespace {

constexpr DType kSimdTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL,
                                DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS,
                                DType::F16,  DType::BF16};

Tensor quantized_weight(DType type, int64_t n_in, int64_t n_out, const std::vector<float>& w) {
  return testing_support::quantized_matrix(type, n_in, n_out, w.data());
}

// Weights with hostile rows: all zero, one huge value, alternating signs, plus smooth ones.
std::vector<float> weights(int64_t n_in, int64_t n_out) {
  std::vector<float> w(static_cast<size_t>(n_in * n_out));
  for (int64_t r = 0; r < n_out; ++r)
    for (int64_t i = 0; i < n_in; ++i) {
      float v = std::sin(0.37f * static_cast<float>(r * n_in + i)) * (1.0f + static_cast<float>(i % 7));
      if (r == 0) v = 0;
      if (r == 1 && i == 5) v = 3.0e4f;
      if (r == 2) v = (i % 2 ? 1.f : -1.f) * 1e-3f;
      w[static_cast<size_t>(r * n_in + i)] = v;
    }
  return w;
}

std::vector<float> activations(int64_t n_in, int64_t n_tokens) {
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i)) * 3.0f;
  return x;
}

// With threads > 1 the call really runs on that many, however few its bytes (threads_for_bytes would keep these
// small shapes on one).
std::vector<float> run(const Tensor& w, const std::vector<float>& x, int64_t n_tokens, int threads) {
  std::vector<float> y(static_cast<size_t>(w.info.n_rows() * n_tokens));
  const EveryCallThreaded every_call_threaded;
  matmul(w, x.data(), n_tokens, y.data(), threads);
  return y;
}

// Against the scalar reference (dequantized weights times the activations rounded the same way): the same up to
// float summation order.
TEST(SimdMatmul, EveryTypeMatchesTheScalarReference) {
  const int64_t n_in = 512, n_out = 40, n_tokens = 3;
  const auto w = weights(n_in, n_out);
  const auto x = activations(n_in, n_tokens);
  for (DType type : kSimdTypes) {
    const Tensor t = quantized_weight(type, n_in, n_out, w);
    std::vector<float> ref(static_cast<size_t>(n_out * n_tokens));
    matmul_generic(t, x.data(), n_tokens, ref.data(), 1);
    const auto got = run(t, x, n_tokens, 1);
    // Tolerance from the size of the terms: sum |w_i x_i| over the row.
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_out; ++r) {
      dequantize_row(t, r, row.data());
      for (int64_t tk = 0; tk < n_tokens; ++tk) {
        double mag = 0;
        for (int64_t i = 0; i < n_in; ++i) mag += std::fabs(row[i] * x[tk * n_in + i]);
        const size_t k = static_cast<size_t>(tk * n_out + r);
        // Q4_1/Q5_1 meet the activations' block sums s, which Q8_1 stores in fp16 (as ggml does): looser.
        const double rel = type == DType::Q4_1 || type == DType::Q5_1 ? 1e-3 : 2e-6;  // fp16 s: 2^-11 relative
        ASSERT_NEAR(got[k], ref[k], rel * mag + 1e-6) << dtype_name(type) << " row " << r << " token " << tk;
      }
    }
  }
}

// Integer parts are exact: with power-of-two scales and small integer values the whole product is exact.
TEST(SimdMatmul, IntegerValuedBlocksGiveTheExactProduct) {
  const int64_t n_in = 256, n_out = 4;
  std::vector<float> w(static_cast<size_t>(n_in * n_out)), x(static_cast<size_t>(n_in));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i * 7 % 15) - 7);
  for (size_t b = 0; b < w.size(); b += 32) w[b] = -8;  // Q4_0: the largest magnitude maps to level 0, d = 1
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i * 5 % 255) - 127);
  for (size_t b = 0; b < x.size(); b += 32) x[b] = 127;  // Q8_0 activations with d = 1
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    std::vector<float> wq = w;
    if (type == DType::Q8_0)
      for (size_t b = 0; b < wq.size(); b += 32) wq[b] = 127;
    const Tensor t = quantized_weight(type, n_in, n_out, wq);
    const auto got = run(t, x, 1, 1);
    for (int64_t r = 0; r < n_out; ++r) {
      double want = 0;
      for (int64_t i = 0; i < n_in; ++i) want += static_cast<double>(wq[r * n_in + i]) * x[i];
      EXPECT_EQ(got[r], static_cast<float>(want)) << dtype_name(type) << " row " << r;
    }
  }
}

// Same bits for any thread count, for a batch and token by token (the tiled path), and on every SIMD target this
// CPU can run (AVX2 and AVX-512 here; SSE4 and scalar take the lane-by-lane path), since the integer sums are
// exact and the float order is fixed.
TEST(SimdMatmul, SameBitsForThreadsBatchesAndTargets) {
  const int64_t n_in = 768, n_out = 33, n_tokens = 5;
  const auto w = weights(n_in, n_out);
  const auto x = activations(n_in, n_tokens);
  for (DType type : kSimdTypes) {
    const Tensor t = quantized_weight(type, n_in, n_out, w);
    if (!row_fits(type, n_in)) continue;
    const auto base = run(t, x, n_tokens, 1);
    EXPECT_EQ(run(t, x, n_tokens, 2), base) << dtype_name(type);
    for (int64_t tk = 0; tk < n_tokens; ++tk) {
      const std::vector<float> one(x.begin() + tk * n_in, x.begin() + (tk + 1) * n_in);
      const auto y = run(t, one, 1, 1);
      for (int64_t r = 0; r < n_out; ++r) ASSERT_EQ(y[r], base[tk * n_out + r]) << dtype_name(type);
    }
    const int targets = for_each_simd_target([&](int64_t target) {
      EXPECT_EQ(run(t, x, n_tokens, 1), base) << dtype_name(type) << " on " << hwy::TargetName(target);
    });
    EXPECT_GE(targets, 2);
  }
}

// Q8_0, Q4_1 and IQ4_XS in both their orders (ops/dot_reference.h SumOrder) on any machine, the others in the one
// they have.
std::vector<SumOrder> orders_of(DType type) {
  if (type == DType::Q8_0 || type == DType::Q4_1 || type == DType::IQ4_XS) return {SumOrder::kVecDot, SumOrder::kAmx};
  return {SumOrder::kByCpu};
}

// Every kernel against the scalar reference, bit for bit: shapes that leave partial row tiles (odd row counts),
// partial token tiles, odd block counts (IQ4_NL's tail), F16 tails and single tokens; every target; 1 and 2 threads;
// Q8_0, Q4_1 and IQ4_XS in both orders (on a CPU with AMX, their batches of 4 tokens or more on the tiles).
TEST(SimdMatmul, BitIdenticalToTheReferenceForEveryShape) {
  struct Shape {
    int64_t n_in, n_out, n_tokens;
  };
  for (DType type : kSimdTypes) {
    const int64_t block = type_traits(type).block_size == 1 ? 8 : type_traits(type).block_size;
    const bool super = block == 256;
    const Shape shapes[] = {{super ? 512 : 96, 1, 1},  {super ? 768 : 160, 7, 5}, {super ? 256 : 32, 19, 9},
                            {super ? 1024 : 288, 33, 2}, {type == DType::F16 || type == DType::BF16 ? 101 : block * 3, 12, 4},
                            {block == 8 ? 200 : block * 2, 17, 3},  // BF16: whole F16 units, a tail of BF16's 16
                            {super ? 768 : 160, 20, 1},  // generation: whole packed tiles, then row-major rows
                            {super ? 512 : 128, 72, 1},  // generation's later chunks: whole tiles from row 32 on
                            {super ? 256 : 64, 48, 1},  // generation over one-block rows: a one-token loop's only head
                            {super ? 512 : 256, 40, 11}};  // batches over whole tiles of 16 rows (Q4_0's by 8 tokens)
    for (const Shape& sh : shapes) {
      if (!row_fits(type, sh.n_in)) continue;
      const Tensor t = quantized_weight(type, sh.n_in, sh.n_out, weights(sh.n_in, sh.n_out));
      const auto x = activations(sh.n_in, sh.n_tokens);
      // Packed for each tile height the targets use (a kernel tile may cover two packed tiles or half of one).
      const Tensor packed[] = {t, pack_for_matmul(t, 16), pack_for_matmul(t, 8), pack_for_matmul(t, 4)};
      EXPECT_EQ(packed[1].interleaved_rows != 0, sh.n_out >= kMaxPackRows && row_bytes(type, sh.n_in) % pack_format(type).unit == 0)
          << dtype_name(type);
      // One token: both ways of opening the stream ahead (ops/simd_matmul.h), whichever this CPU takes.
      const std::vector<StreamAhead> policies =
          sh.n_tokens == 1 ? std::vector{StreamAhead::kFar, StreamAhead::kNear} : std::vector{StreamAhead::kByCpu};
      for (SumOrder order : orders_of(type)) {
        set_sum_order(order);
        std::vector<float> ref(static_cast<size_t>(sh.n_out * sh.n_tokens));
        matmul_reference(t, x.data(), sh.n_tokens, ref.data(), 1);
        for_each_simd_target([&](int64_t target) {
          for (StreamAhead policy : policies) {
            set_stream_ahead(policy);
            for (int threads : {1, 2})
              for (const Tensor& w : packed) {
                const auto got = run(w, x, sh.n_tokens, threads);
                for (size_t i = 0; i < got.size(); ++i)
                  ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(ref[i]))
                      << dtype_name(type) << " packed by " << w.interleaved_rows << " " << sh.n_in << "x" << sh.n_out
                      << " tokens " << sh.n_tokens << " on " << hwy::TargetName(target) << " stream ahead "
                      << static_cast<int>(policy) << " order " << static_cast<int>(order) << " threads " << threads
                      << ", output " << i << ": " << got[i] << " vs " << ref[i];
              }
          }
        });
        set_stream_ahead(StreamAhead::kByCpu);
      }
      set_sum_order(SumOrder::kByCpu);
    }
  }
}

// Rows of blocks whose every byte but the f16 scales is `fill`: the largest levels (0xFF), the most negative ones
// and scales (0x00: Q3_K's -4, IQ4_XS's -127 and -32; 0x80: Q6_K's scale -128), the kernels' integer sums at their
// bounds. d (and dmin, Q4_1's m) are 1.
Tensor filled_blocks(DType type, int64_t n_in, int64_t n_out, uint8_t fill) {
  const TensorInfo info = testing_support::matrix_info(type, n_in, n_out);
  std::vector<uint8_t> bytes(info.n_bytes(), fill);
  std::vector<size_t> halves;  // the f16 fields' offsets in a block
  switch (type) {
    case DType::Q2_K: halves = {offsetof(BlockQ2K, d), offsetof(BlockQ2K, dmin)}; break;
    case DType::Q3_K: halves = {offsetof(BlockQ3K, d)}; break;
    case DType::Q4_K: halves = {offsetof(BlockQ4K, d), offsetof(BlockQ4K, dmin)}; break;
    case DType::Q5_K: halves = {offsetof(BlockQ5K, d), offsetof(BlockQ5K, dmin)}; break;
    case DType::Q6_K: halves = {offsetof(BlockQ6K, d)}; break;
    case DType::Q4_1: halves = {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)}; break;
    case DType::Q5_1: halves = {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)}; break;
    default: halves = {0};  // Q4_0, Q5_0, Q8_0, IQ4_NL, IQ4_XS: d first
  }
  const size_t block_bytes = type_traits(type).block_bytes;
  for (size_t at = 0; at < bytes.size(); at += block_bytes)
    for (size_t half : halves) {
      bytes[at + half] = 0x00;  // 1.0 in f16
      bytes[at + half + 1] = 0x3C;
    }
  return make_owned_tensor(info, std::move(bytes));
}

// Blocks at their bounds (filled_blocks) against activations at theirs: every value 1 (each 8-bit block all -128)
// or 1 but one per block (all 127 but that one): the reference's bits, one token and small batches, packed and not,
// both stream policies, every target, the orders the type has.
TEST(SimdMatmul, BlocksAtTheirBoundsGiveTheReferenceBits) {
  const int64_t n_in = 512, n_out = 40;
  for (DType type : kSimdTypes) {
    if (type == DType::F16 || type == DType::BF16) continue;
    for (uint8_t fill : {0x00, 0x7F, 0x80, 0xFF}) {
      const Tensor t = filled_blocks(type, n_in, n_out, fill);
      const Tensor packed[] = {t, pack_for_matmul(t, 16)};
      for (bool all_min : {true, false})
        for (int64_t n_tokens : {1, 2, 3, 5}) {
          std::vector<float> x(static_cast<size_t>(n_in * n_tokens), 1.0f);
          if (!all_min)
            for (size_t i = 0; i < x.size(); i += 32) x[i] = -1.01f;
          for (SumOrder order : orders_of(type)) {
            set_sum_order(order);
            std::vector<float> ref(static_cast<size_t>(n_out * n_tokens));
            matmul_reference(t, x.data(), n_tokens, ref.data(), 1);
            for_each_simd_target([&](int64_t target) {
              for (StreamAhead policy : {StreamAhead::kFar, StreamAhead::kNear}) {
                set_stream_ahead(policy);
                for (const Tensor& w : packed) {
                  const auto got = run(w, x, n_tokens, 1);
                  for (size_t i = 0; i < got.size(); ++i)
                    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(ref[i]))
                        << dtype_name(type) << " filled with " << int{fill}
                        << (all_min ? ", activations -128" : ", activations 127")
                        << ", packed by " << w.interleaved_rows << ", " << n_tokens << " tokens on "
                        << hwy::TargetName(target)
                        << " stream ahead " << static_cast<int>(policy) << " order " << static_cast<int>(order)
                        << ", output " << i << ": " << got[i] << " vs " << ref[i];
                }
              }
            });
            set_stream_ahead(StreamAhead::kByCpu);
          }
          set_sum_order(SumOrder::kByCpu);
        }
    }
  }
}

// BF16 where the sums hover around FLT_MIN: the steps' flushing (the instruction's own on AVX512-BF16, MXCSR's
// on the other targets) gives the reference's bits, packed and row-major, one token and a batch, 1 and 2 threads.
TEST(SimdMatmul, Bf16UnderflowGivesTheReferenceBitsOnEveryTarget) {
  std::mt19937 rng(3);
  const auto tiny = [&](int center) {
    const int e = center + static_cast<int>(rng() % 13) - 6;
    return (rng() & 1 ? -1.0f : 1.0f) * std::ldexp(1.0f + static_cast<float>(rng() % 128) / 128.0f, e);
  };
  for (const int64_t n_in : {256, 264}) {
    const int64_t n_out = 40;
    std::vector<float> w(static_cast<size_t>(n_in * n_out));
    for (float& v : w) v = tiny(-64);
    const Tensor t = quantized_weight(DType::BF16, n_in, n_out, w);  // bf16-exact, so stored as given
    for (const int64_t n_tokens : {1, 7}) {
      std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
      for (float& v : x) v = tiny(-63);
      std::vector<float> ref(static_cast<size_t>(n_out * n_tokens));
      matmul_reference(t, x.data(), n_tokens, ref.data(), 1);
      // The same weights 2^40 times larger underflow nowhere, so where their outputs are not exactly 2^40 times
      // these, the flushing changed the sum: most outputs.
      std::vector<float> big_w(w.size()), big(ref.size());
      for (size_t i = 0; i < w.size(); ++i) big_w[i] = std::ldexp(w[i], 40);
      matmul_reference(quantized_weight(DType::BF16, n_in, n_out, big_w), x.data(), n_tokens, big.data(), 1);
      size_t flushed = 0;
      for (size_t i = 0; i < ref.size(); ++i) flushed += big[i] != std::ldexp(ref[i], 40);
      EXPECT_GT(flushed, ref.size() / 2);
      const Tensor layouts[] = {t, pack_for_matmul(t, 16), pack_for_matmul(t, 8), pack_for_matmul(t, 4)};
      for_each_simd_target([&](int64_t target) {
        for (int threads : {1, 2})
          for (const Tensor& l : layouts)
            ASSERT_EQ(run(l, x, n_tokens, threads), ref)
                << n_in << " values, packed by " << l.interleaved_rows << ", " << n_tokens << " tokens on " << hwy::TargetName(target);
      });
    }
  }
}

// Weights sharing one input in one pass give each weight's own matmul bits (mixed types, activation types and
// row counts; packed and row-major).
TEST(SimdMatmul, SharedInputPassEqualsSeparateMatmuls) {
  const int64_t n_in = 512, n_tokens = 3;
  const auto x = activations(n_in, n_tokens);
  const Tensor a = pack_for_matmul(quantized_weight(DType::Q4_K, n_in, 40, weights(n_in, 40)));
  const Tensor b = quantized_weight(DType::Q6_K, n_in, 19, weights(n_in, 19));
  const Tensor c = pack_for_matmul(quantized_weight(DType::Q8_0, n_in, 24, weights(n_in, 24)));
  const EveryCallThreaded every_call_threaded;
  for (int threads : {1, 2}) {
    std::vector<float> ya(40 * n_tokens), yb(19 * n_tokens), yc(24 * n_tokens);
    const MatmulTarget targets[] = {{&a, ya.data()}, {&b, yb.data()}, {&c, yc.data()}};
    matmul_shared_input(targets, x.data(), n_tokens, threads);
    EXPECT_EQ(ya, run(a, x, n_tokens, 1));
    EXPECT_EQ(yb, run(b, x, n_tokens, 1));
    EXPECT_EQ(yc, run(c, x, n_tokens, 1));
  }
}

// The interleaved layout keeps every row: copy_row and dequantize_row give the row-major bytes back, and a packed
// tensor refuses to be written out as if it were a file's bytes.
TEST(PackedWeight, RowsComeBackAndFilesAreRefused) {
  for (DType type : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL, DType::Q2_K,
                     DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS, DType::F16, DType::BF16}) {
    const int64_t n_in = 512, n_out = 21;  // full tiles, then row-major rows after the last
    const Tensor t = quantized_weight(type, n_in, n_out, weights(n_in, n_out));
    const Tensor p = pack_for_matmul(t);
    ASSERT_EQ(p.interleaved_rows, simd_pack_rows(p.type()));
    EXPECT_NE(0, std::memcmp(p.data, t.data, t.info.n_bytes())) << dtype_name(type);
    const size_t rb = row_bytes(type, n_in);
    std::vector<uint8_t> row(rb);
    std::vector<float> a(static_cast<size_t>(n_in)), b(a.size());
    for (int64_t r = 0; r < n_out; ++r) {
      copy_row(p, r, row.data());
      EXPECT_EQ(0, std::memcmp(row.data(), t.data + r * rb, rb)) << dtype_name(type) << " row " << r;
      dequantize_row(t, r, a.data());
      dequantize_row(p, r, b.data());
      EXPECT_EQ(a, b);
    }
    EXPECT_THROW(p.bytes(), Error);
    for (int rows : {4, 8, 16}) {  // every tile height keeps the rows
      const Tensor q = pack_for_matmul(t, rows);
      for (int64_t r = 0; r < n_out; ++r) {
        copy_row(q, r, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), t.data + r * rb, rb)) << rows << " rows a tile, row " << r;
      }
    }
    EXPECT_THROW(pack_for_matmul(t, 3), Error);
    EXPECT_EQ(pack_for_matmul(p).data, p.data);  // already packed: left as it is
  }
}

// BF16 steps whose product leaves float's range where the FMA's sum does not, and subnormal weights, which the
// steps read as zero. SSE4, without FMA, multiplies and adds, and must notice these (MXCSR's flags) and redo the
// tile with exact FMAs; the other passes must simply agree. Each pattern row uses its own unit of the activations.
TEST(SimdMatmul, Bf16ProductsPastFloatRangeGiveTheReferenceBits) {
  const int64_t n_in = 64, n_out = 24;
  const float bf16_max = std::bit_cast<float>(0x7F7F0000u);
  std::vector<float> x(static_cast<size_t>(n_in)), w(static_cast<size_t>(n_in * n_out));
  x[0] = std::ldexp(1.0f, 64), x[1] = 1;         // row 0
  x[16] = std::ldexp(1.0f, 100);                 // row 1
  x[32] = std::ldexp(1.0f, -64), x[33] = std::ldexp(1.0f, -63);  // row 2
  x[48] = 3, x[49] = -2;                         // row 3
  for (int64_t r = 0; r < n_out; ++r) {
    float* row = w.data() + r * n_in;
    switch (r % 4) {
      case 0: row[0] = std::ldexp(1.0f, 64), row[1] = -bf16_max; break;  // -max, then + 2^128: 2^120
      case 1: row[16] = std::ldexp(1.0f, -130); break;                      // subnormal: zero, not 2^-30
      // 2^-125, then - 1.5 * 2^-127 (tiny, exact): 1.25 * 2^-126, not 2^-125 with the product flushed
      case 2: row[32] = -1.5f * std::ldexp(1.0f, -63), row[33] = std::ldexp(1.0f, -62); break;
      case 3: row[48] = 0.5f, row[49] = static_cast<float>(r); break;
    }
  }
  const Tensor t = quantized_weight(DType::BF16, n_in, n_out, w);  // bf16-exact, so stored as given
  const float want[] = {std::ldexp(1.0f, 120), 0.0f, 1.25f * std::numeric_limits<float>::min()};
  for (const int64_t n_tokens : {1, 3}) {
    std::vector<float> xs;
    for (int64_t k = 0; k < n_tokens; ++k) xs.insert(xs.end(), x.begin(), x.end());
    std::vector<float> ref(static_cast<size_t>(n_out * n_tokens));
    matmul_reference(t, xs.data(), n_tokens, ref.data(), 1);
    for (int64_t r = 0; r < 3; ++r) ASSERT_EQ(ref[r], want[r]) << "row " << r;
    ASSERT_EQ(ref[3], -4.5f);  // 0.5 * 3 + 3 * -2
    const Tensor layouts[] = {t, pack_for_matmul(t, 16), pack_for_matmul(t, 8), pack_for_matmul(t, 4)};
    for_each_simd_target([&](int64_t target) {
      for (int threads : {1, 2})
        for (const Tensor& l : layouts)
          ASSERT_EQ(run(l, xs, n_tokens, threads), ref)
              << "packed by " << l.interleaved_rows << ", " << n_tokens << " tokens on " << hwy::TargetName(target);
    });
  }
}

// Every pass's V::Fma rounds once, as fmaf: on SSE4, which has no FMA, the tiles round it in software (rounding
// to odd in double). Sums near a float midpoint catch a plain double sum rounded twice: 1 + 2^-23 + 2^-24 - 2^-70
// is (1 + 2^-23) + 2^-24 (1 - 2^-46), nearest 1 + 2^-23, whose double, the midpoint itself, rounds to 1 + 2^-22.
TEST(SimdFma, RoundsOnceOnEveryTarget) {
  std::vector<float> a, b, c;
  const auto add = [&](float x, float y, float z) { a.push_back(x), b.push_back(y), c.push_back(z); };
  add(std::ldexp(1.0f + 0x1p-23f, -24), 1.0f - 0x1p-23f, 1.0f + 0x1p-23f);
  for (int k = -3; k <= 3; ++k)  // products just off a half unit of c, both signs, in every place
    for (int j = -3; j <= 3; ++j)
      for (int m = 0; m < 4; ++m)
        for (int e : {-24, -25, 1, 40}) {
          const float c0 = std::ldexp(1.0f + static_cast<float>(m) * 0x1p-23f, e + 24);
          add(std::ldexp(1.0f + static_cast<float>(k) * 0x1p-23f, e), 1.0f + static_cast<float>(j) * 0x1p-23f, c0);
          add(-std::ldexp(1.0f + static_cast<float>(k) * 0x1p-23f, e), 1.0f + static_cast<float>(j) * 0x1p-23f, -c0);
        }
  // Each of those again beside an exact sum, in either lane of a pair of doubles: SSE4 skips the odd step for a
  // pair whose two sums are exact in double.
  while (a.size() % 4) add(1.0f, 1.0f, 1.0f);
  for (size_t i = 0, n = a.size(); i < n; ++i) {
    add(1.0f, 1.0f, 1.0f), add(a[i], b[i], c[i]);
    add(a[i], b[i], c[i]), add(1.0f, 1.0f, 1.0f);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-140, 60);
  for (int i = 0; i < 20000; ++i) {
    const float x = std::ldexp(unit(rng), exponent(rng) / 2), y = std::ldexp(unit(rng), exponent(rng) / 2);
    // c near -x*y half the time (cancellation), else anywhere; a few zeros and subnormal results
    const float z = i % 2 ? -x * y * (1.0f + unit(rng) * 0x1p-20f) : std::ldexp(unit(rng), exponent(rng));
    add(i % 97 == 0 ? 0.0f : x, y, i % 89 == 0 ? 0.0f : z);
  }
  while (a.size() % 16) add(1.0f, 1.0f, 1.0f);
  std::vector<float> out(a.size());
  const int targets = for_each_simd_target([&](int64_t) {
    std::fill(out.begin(), out.end(), 0.0f);
    simd_fma(a.data(), b.data(), c.data(), out.data(), out.size());
    int wrong = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const float want = std::fma(a[i], b[i], c[i]);
      if (std::bit_cast<uint32_t>(out[i]) != std::bit_cast<uint32_t>(want) && ++wrong <= 3)
        ADD_FAILURE() << "fma(" << a[i] << ", " << b[i] << ", " << c[i] << ") = " << want << ", got " << out[i];
    }
    EXPECT_EQ(wrong, 0);
  });
  EXPECT_GE(targets, 3);
}

// Every fp16 value, Inf and subnormals too, as f16_to_f32 gives it, on every pass (SSE4 has no F16C); NaN as a NaN
// (F16C keeps its payload, f16_to_f32 does not).
TEST(SimdHalf, EveryValueAsTheReference) {
  std::vector<uint16_t> h(65536);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> out(h.size());
  for_each_simd_target([&](int64_t) {
    simd_half_to_float(h.data(), out.data(), h.size());
    int wrong = 0;
    for (size_t i = 0; i < h.size(); ++i)
      if (!(std::isnan(out[i]) && std::isnan(f16_to_f32(h[i]))) &&
          std::bit_cast<uint32_t>(out[i]) != std::bit_cast<uint32_t>(f16_to_f32(h[i])) && ++wrong <= 3)
        ADD_FAILURE() << "fp16 " << std::hex << i << ": " << out[i] << " against " << f16_to_f32(h[i]);
    EXPECT_EQ(wrong, 0);
  });
}

// A pass without tiles (SSSE3 and scalar code) runs the reference, row by row, and packs nothing: its rows stay
// where they are, read in place rather than copied piece by piece out of tiles (which read 1.3-6x slower than the
// reference itself). The others pack in tiles of their lanes: 4 rows on SSE4, 8 on AVX2, 16 on AVX-512. Either way the outputs are the reference's, also
// from a weight packed for another pass.
TEST(PackedWeight, PassesWithoutTilesLeaveRowsRowMajor) {
  const int64_t n_in = 512, n_out = 40, n_tokens = 2;
  const std::vector<float> x = activations(n_in, n_tokens);
  for (DType type : kSimdTypes) {
    SCOPED_TRACE(dtype_name(type));
    const Tensor t = quantized_weight(type, n_in, n_out, weights(n_in, n_out));
    const Tensor best = pack_for_matmul(t);  // the best pass's tiles (16 or 8 rows here)
    ASSERT_GT(best.interleaved_rows, 4);
    const std::vector<float> expected = run(t, x, n_tokens, 1);
    int without_tiles = 0;
    for_each_simd_target([&](int64_t target) {
      const Tensor p = pack_for_matmul(t);
      int lanes = 1;
      if (target == HWY_SSE4) lanes = 4;
      if (target == HWY_AVX2) lanes = 8;
      if (target == HWY_AVX3 || target == HWY_AVX3_DL) lanes = 16;
      EXPECT_EQ(simd_pack_rows(type), lanes);
      if (lanes == 1) {
        ++without_tiles;
        EXPECT_EQ(p.data, t.data);
        EXPECT_EQ(p.interleaved_rows, 0);
      } else {
        EXPECT_EQ(p.interleaved_rows, lanes);
      }
      EXPECT_EQ(run(p, x, n_tokens, 2), expected);
      EXPECT_EQ(run(best, x, n_tokens, 2), expected);
    });
    EXPECT_GE(without_tiles, 2) << "this build and CPU run SSSE3 and scalar code";
  }
}

// Where paired group g's byte i comes from (ops/packed_weight.h): byte 4l + 2a + b of group 2w + s is value
// 4l + 2s + b of group 2w + a.
struct Source {
  int group, value;
};
Source paired_source(int g, int i) {
  const int l = i / 4, a = i / 2 % 2, b = i % 2;
  return {2 * (g / 2) + a, 4 * l + 2 * (g % 2) + b};
}

// Group pairing moves every byte (or field) where the kernel wants it, and pairing twice gives back the original.
TEST(PackedWeight, PairingGroupsPutsTwoValuesOfEachGroupInALanesWord) {
  uint8_t groups[64], paired[64], back[64];
  for (int i = 0; i < 64; ++i) groups[i] = static_cast<uint8_t>(i);  // byte = group * 32 + value
  pair_group_bytes(groups, paired);
  for (int g = 0; g < 2; ++g)
    for (int i = 0; i < 32; ++i) {
      const Source from = paired_source(g, i);
      ASSERT_EQ(paired[32 * g + i], 32 * from.group + from.value) << "paired group " << g << ", byte " << i;
    }
  pair_group_bytes(paired, back);
  EXPECT_EQ(0, std::memcmp(back, groups, sizeof(groups)));
  // Fields: group a of pair p at field 2p + a of each byte; its value there is (group, value, pair) mixed.
  for (int width : {1, 2, 4}) {
    const int pairs = 4 / width;
    const auto field_value = [&](int p, int group, int value) {
      return (7 * p + 3 * group + 5 * value) & ((1 << width) - 1);
    };
    uint8_t run[32] = {};
    for (int i = 0; i < 32; ++i)
      for (int p = 0; p < pairs; ++p)
        for (int a = 0; a < 2; ++a)
          run[i] = static_cast<uint8_t>(run[i] | field_value(p, a, i) << (width * (2 * p + a)));
    uint8_t fields[32];
    std::memcpy(fields, run, sizeof(run));
    pair_group_fields(fields, width);
    for (int i = 0; i < 32; ++i)
      for (int p = 0; p < pairs; ++p)
        for (int s = 0; s < 2; ++s) {
          const Source from = paired_source(s, i);
          ASSERT_EQ(fields[i] >> (width * (2 * p + s)) & ((1 << width) - 1), field_value(p, from.group, from.value))
              << width << "-bit fields, pair " << p << ", paired group " << s << ", byte " << i;
        }
    pair_group_fields(fields, width);
    EXPECT_EQ(0, std::memcmp(fields, run, sizeof(run))) << width << "-bit fields";
  }
}

// Q3_K's packed units hold each 3-bit level in the fields the kernel reads (ops/packed_weight.h): levels chosen so
// that every group takes every value, written as hmask and qs, come out of x, y and z where the layout says, the
// groups paired, and the scales and d stay in place.
TEST(PackedWeight, Q3KFieldsHoldEachLevelWhereTheKernelReadsIt) {
  BlockQ3K block{};
  const auto level = [](int g, int i) { return (3 * g + 5 * i + 1) % 8; };
  for (int i = 0; i < 32; ++i)
    for (int g = 0; g < 8; ++g) {
      block.qs[32 * (g / 4) + i] = static_cast<uint8_t>(block.qs[32 * (g / 4) + i] | (level(g, i) & 3) << (2 * (g % 4)));
      block.hmask[i] = static_cast<uint8_t>(block.hmask[i] | (level(g, i) >> 2) << g);
    }
  for (int k = 0; k < 12; ++k) block.scales[k] = static_cast<uint8_t>(17 * k + 3);
  block.d = 0x3C01;
  BlockQ3K encoded = block;
  auto* bytes = reinterpret_cast<uint8_t*>(&encoded);
  q3k_encode_fields(bytes);
  for (int i = 0; i < 32; ++i) {
    const int x = bytes[i], y = bytes[32 + i], z = bytes[64 + i];
    const int fields[8] = {x >> 2 & 7, x >> 5, y >> 2 & 7, y >> 5, z & 7, z >> 5, (x & 3) | (z >> 3 & 1) << 2,
                           (y & 3) | (z >> 4 & 1) << 2};
    for (int g = 0; g < 8; ++g) {
      const Source from = paired_source(g, i);
      ASSERT_EQ(fields[g], level(from.group, from.value)) << "paired group " << g << ", byte " << i;
    }
  }
  EXPECT_EQ(0, std::memcmp(encoded.scales, block.scales, sizeof(block.scales)));
  EXPECT_EQ(encoded.d, block.d);
  q3k_decode_fields(bytes);
  EXPECT_EQ(0, std::memcmp(&encoded, &block, sizeof(block)));
}

// Q5_K's likewise: every sub-block's 5-bit levels, written as qh and qs, come out of w and v_0..v_3, paired.
TEST(PackedWeight, Q5KFieldsHoldEachLevelWhereTheKernelReadsIt) {
  BlockQ5K block{};
  const auto level = [](int j, int i) { return (13 * j + 7 * i + 2) % 32; };
  for (int i = 0; i < 32; ++i)
    for (int j = 0; j < 8; ++j) {
      block.qs[32 * (j / 2) + i] = static_cast<uint8_t>(block.qs[32 * (j / 2) + i] | (level(j, i) & 15) << (4 * (j % 2)));
      block.qh[i] = static_cast<uint8_t>(block.qh[i] | (level(j, i) >> 4) << j);
    }
  for (int k = 0; k < 12; ++k) block.scales[k] = static_cast<uint8_t>(29 * k + 5);
  block.d = 0x3A11;
  block.dmin = 0x2C03;
  BlockQ5K encoded = block;
  auto* bytes = reinterpret_cast<uint8_t*>(&encoded);
  q5k_encode_fields(bytes);
  for (int i = 0; i < 32; ++i) {
    const int w = bytes[16 + i];
    for (int p = 0; p < 4; ++p) {
      const int v = bytes[48 + 32 * p + i];
      const Source even = paired_source(2 * p, i), odd = paired_source(2 * p + 1, i);
      ASSERT_EQ(v & 31, level(even.group, even.value)) << "paired sub-block " << 2 * p << ", byte " << i;
      ASSERT_EQ((w >> (2 * p) & 3) | (v >> 5) << 2, level(odd.group, odd.value))
          << "paired sub-block " << 2 * p + 1 << ", byte " << i;
    }
  }
  EXPECT_EQ(0, std::memcmp(encoded.scales, block.scales, sizeof(block.scales)));
  EXPECT_EQ(encoded.d, block.d);
  EXPECT_EQ(encoded.dmin, block.dmin);
  q5k_decode_fields(bytes);
  EXPECT_EQ(0, std::memcmp(&encoded, &block, sizeof(block)));
}

// Q5_0's and Q5_1's likewise: each value's 5-bit level, written as qh and qs, comes out of v's low five bits
// (values 0..15) or w's bit pair and v's top three bits (16..31); d (and Q5_1's m) stay in place. Every level
// appears in each byte position over the blocks.
template <typename Block>
void ExpectQ5FieldsHoldEachLevel(void (*encode)(uint8_t*), void (*decode)(uint8_t*)) {
  for (int seed = 0; seed < 32; ++seed) {
    Block block{};
    const auto level = [seed](int i) { return (seed + 5 * i + i / 4) % 32; };  // i / 4: the bit pairs differ
    uint32_t qh = 0;
    for (int i = 0; i < 32; ++i) {
      block.qs[i % 16] = static_cast<uint8_t>(block.qs[i % 16] | (level(i) & 15) << (4 * (i / 16)));
      qh |= static_cast<uint32_t>(level(i) >> 4) << i;
    }
    std::memcpy(block.qh, &qh, 4);
    block.d = static_cast<uint16_t>(0x3C01 + seed);
    if constexpr (requires { block.m; }) block.m = static_cast<uint16_t>(0x2C03 + seed);
    Block encoded = block;
    auto* bytes = reinterpret_cast<uint8_t*>(&encoded);
    encode(bytes);
    const uint8_t* w = encoded.qh;
    for (int i = 0; i < 16; ++i) {
      const int v = encoded.qs[i];
      ASSERT_EQ(v & 31, level(i)) << "seed " << seed << ", value " << i;
      ASSERT_EQ((w[i % 4] >> (2 * (i / 4)) & 3) | (v >> 5) << 2, level(16 + i)) << "seed " << seed << ", value " << 16 + i;
    }
    EXPECT_EQ(encoded.d, block.d);
    if constexpr (requires { block.m; }) {
      EXPECT_EQ(encoded.m, block.m);
    }
    decode(bytes);
    ASSERT_EQ(0, std::memcmp(&encoded, &block, sizeof(block))) << "seed " << seed;
  }
}
TEST(PackedWeight, Q5_0AndQ5_1FieldsHoldEachLevelWhereTheKernelReadsIt) {
  ExpectQ5FieldsHoldEachLevel<BlockQ5_0>(q5_0_encode_fields, q5_0_decode_fields);
  ExpectQ5FieldsHoldEachLevel<BlockQ5_1>(q5_1_encode_fields, q5_1_decode_fields);
}

// Q6_K's likewise: every group's 6-bit levels, written as ql and qh, come out of each half's x, y and z, paired.
TEST(PackedWeight, Q6KFieldsHoldEachLevelWhereTheKernelReadsIt) {
  BlockQ6K block{};
  const auto level = [](int h, int k, int i) { return (7 * k + 11 * i + 5 * h + 3) % 64; };
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 32; ++i)
      for (int k = 0; k < 4; ++k) {
        uint8_t& nibbles = block.ql[64 * h + 32 * (k % 2) + i];
        nibbles = static_cast<uint8_t>(nibbles | (level(h, k, i) & 15) << (4 * (k / 2)));
        block.qh[32 * h + i] = static_cast<uint8_t>(block.qh[32 * h + i] | (level(h, k, i) >> 4) << (2 * k));
      }
  for (int j = 0; j < 16; ++j) block.scales[j] = static_cast<int8_t>(9 * j - 70);
  block.d = 0x2E66;
  BlockQ6K encoded = block;
  auto* bytes = reinterpret_cast<uint8_t*>(&encoded);
  q6k_encode_fields(bytes);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 32; ++i) {
      const int x = bytes[64 * h + i], y = bytes[64 * h + 32 + i], z = bytes[128 + 32 * h + i];
      const int fields[4] = {x & 63, y & 63, (z & 15) | (x >> 6) << 4, (z >> 4) | (y >> 6) << 4};
      for (int k = 0; k < 4; ++k) {
        const Source from = paired_source(k, i);  // groups pair within a half
        ASSERT_EQ(fields[k], level(h, from.group, from.value))
            << "half " << h << ", paired group " << k << ", byte " << i;
      }
    }
  EXPECT_EQ(0, std::memcmp(encoded.scales, block.scales, sizeof(block.scales)));
  EXPECT_EQ(encoded.d, block.d);
  q6k_decode_fields(bytes);
  EXPECT_EQ(0, std::memcmp(&encoded, &block, sizeof(block)));
}

}  // namespace
}  // namespace lowbit
