// Activations quantized once per matrix product, to the type the weights' dot product takes (activation_type in
// ops/matmul.h), exactly as ggml's x86 CPU backend rounds them: Q8_0 with 127/amax and round-half-even, Q8_1 the
// same plus s = d * sum(q) with the unrounded d, Q8_K as quantize_row_q8_K, F16/BF16 by conversion.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace lowbit {

struct BlockQ8_0;
struct BlockQ8_1;
struct BlockQ8K;
void quantize_activation_q8_0(const float* x, BlockQ8_0* out, int64_t n);
void quantize_activation_q8_1(const float* x, BlockQ8_1* out, int64_t n);
void quantize_activation_q8_k(const float* x, BlockQ8K* out, int64_t n);
// One row of n values (a multiple of the type's block) into `out`.
void quantize_activation_row(DType type, const float* x, int64_t n, void* out);

// One token's quantized row as the kernels take it: the blocks and, for Q8_0/Q8_1, each block's eight quad sums
// (sum of values 4l..4l+3) times -16 and their plain total, with which the VNNI kernels turn unsigned weight levels
// into signed products, and each block's fp16 scale d as a float; for Q8_K each super-block's quad sums times -32
// and times -4 as int16 pairs (QuadPairsQ8K in the .cc), with which the Q6_K and Q3_K tiles take away their levels'
// offset, and the values with their groups paired as those tiles' weights are (ops/packed_weight.h
// pair_group_bytes); for F16 the rounded values as floats (BF16's kernels take the bf16 row itself).
// (Converted once, not once per weight row tile.) The quad sums come pre-multiplied because they are the start of
// the dot products whose levels are value + 16 (Q5_0), which then load them broadcast as they are; the block sums
// start those of the whole-block tiles (Q4_0, IQ4_NL, the int4 groups).
// ActRow::quad_pairs holds, per super-block, one table of 32 words for each of these factors (2^bits): Q6_K's
// levels' offset, 32, then Q3_K's, 4. Q3_K's own table, not Q6_K's shifted in its tile, saves a shift per multiply-add.
inline constexpr int kQuadPairsOffsetBits[] = {5, 2};
inline constexpr int kQuadPairsTables = sizeof(kQuadPairsOffsetBits) / sizeof(int);
inline constexpr int kQuadPairsWords = 32 * kQuadPairsTables;  // a super-block's
// Where the table for an offset of 2^bits starts in a super-block's words.
constexpr int quad_pairs_table(int bits) {
  for (int i = 0; i < kQuadPairsTables; ++i)
    if (kQuadPairsOffsetBits[i] == bits) return 32 * i;
  return -1;
}
struct ActRow {
  const uint8_t* blocks;
  const int32_t* quad_starts;  // -16 * quad sum
  const float* scales;
  const int32_t* block_sums;
  const float* values;
  // Q8_K: kQuadPairsWords a super-block; in the table for 2^bits (quad_pairs_table), word 8w + l =
  // -2^bits (A(2w, l), A(2w + 1, l))
  const int32_t* quad_pairs = nullptr;
  const int8_t* paired_qs = nullptr;    // Q8_K: each super-block's qs with its groups paired (pair_group_bytes)
};

// n_tokens rows, each row_bytes long, 64-byte aligned (kernels load whole cache lines).
class QuantizedActivations {
 public:
  QuantizedActivations() = default;
  QuantizedActivations(DType type, int64_t n_tokens, int64_t n_in) { reset(type, n_tokens, n_in); }
  // Re-shapes for another call, keeping the memory already held (the contents are not kept).
  void reset(DType type, int64_t n_tokens, int64_t n_in);
  DType type() const { return type_; }
  const uint8_t* row(int64_t t) const { return base() + static_cast<size_t>(t) * row_bytes_; }
  uint8_t* row(int64_t t) { return base() + static_cast<size_t>(t) * row_bytes_; }
  size_t row_bytes() const { return row_bytes_; }
  ActRow kernel_row(int64_t t) const {
    if (!values_.empty()) return {row(t), nullptr, nullptr, nullptr, values_.data() + static_cast<size_t>(t) * n_in_};
    if (!quad_pairs_.empty())
      return {row(t), nullptr, nullptr, nullptr, nullptr,
              quad_pairs_.data() + static_cast<size_t>(t) * super_blocks_per_row_ * kQuadPairsWords,
              paired_qs_.data() + static_cast<size_t>(t) * super_blocks_per_row_ * 256};
    if (quad_starts_.empty()) return {row(t), nullptr, nullptr, nullptr, nullptr};
    const size_t blocks = static_cast<size_t>(t) * (sums_per_row_ / 8);
    return {row(t), quad_starts_.data() + static_cast<size_t>(t) * sums_per_row_, scales_.data() + blocks,
            block_sums_.data() + blocks, nullptr};
  }
  // Fills row t's part of what kernel_row gives beside the blocks: the quad and block sums and float scales of Q8_0
  // and Q8_1 rows, the quad sum pairs of Q8_K rows, the float values of F16 rows (a no-op for the others).
  void compute_kernel_extras(int64_t t);
  // The same rows over `src`'s blocks, with extras of its own computed from them (src must outlive its use and
  // keep its blocks): generation's other threads compute these rather than read the calling thread's across
  // cores, where every line the caller wrote costs ~10-20 ns to move (README, the tenth session's notes).
  void mirror(const QuantizedActivations& src);

 private:
  uint8_t* base() const;
  void shape(DType type, int64_t n_tokens, int64_t n_in);  // everything but the blocks' storage
  DType type_ = DType::F32;
  size_t row_bytes_ = 0;
  int64_t n_tokens_ = 0, n_in_shape_ = 0;  // the shape given to reset(), for mirror()
  const uint8_t* borrowed_ = nullptr;  // mirror(): the blocks are another's
  std::vector<uint8_t> storage_;
  size_t sums_per_row_ = 0;
  std::vector<int32_t> quad_starts_;
  std::vector<float> scales_;
  std::vector<int32_t> block_sums_;
  size_t super_blocks_per_row_ = 0;  // Q8_K's, for quad_pairs_ and paired_qs_
  std::vector<int32_t> quad_pairs_;
  std::vector<int8_t> paired_qs_;  // 256 bytes a super-block
  size_t n_in_ = 0;
  std::vector<float> values_;
};

// Every token's row, split over `threads` (each row is independent, so the bytes do not depend on it).
QuantizedActivations quantize_activations(DType type, const float* x, int64_t n_tokens, int64_t n_in, int threads);
// The same into `acts`, reusing its memory.
void quantize_activations(QuantizedActivations& acts, DType type, const float* x, int64_t n_tokens, int64_t n_in, int threads);

}  // namespace lowbit
