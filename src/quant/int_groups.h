// GPTQ/AWQ integer groups in the engine: the checkpoints' value = scale * (q - zero), with q of 2, 3 or 4 bits and
// one fp16 scale and integer zero per group of input columns, held in 32-value blocks (the group's scale and zero
// repeated in each of its blocks) so the matmul kernels take them like any other block type. An engine-only type:
// never written to a file (GGUF ids >= 1000 are refused both ways).
//
// Groups must be whole 32-value blocks. With act-order (a GPTQ g_idx that is not i / group_size) the columns are
// stored sorted by group, and the tensor carries that order (Tensor::input_order): the matmul gathers the
// activations into it first.
#pragma once

#include <cstdint>

namespace lowbit {

// Packed: 19 bytes a block (an aligned layout would add a byte to every 32 values, 5% more to read).
struct __attribute__((packed)) BlockI4G {
  uint16_t d;      // fp16 scale of the block's group
  uint8_t z;       // zero point, 0..16 (GPTQ v1 can hold 2^bits)
  uint8_t qs[16];  // levels 0..15: value j in the low nibble of byte j (j < 16), value j in the high nibble of j - 16
};
static_assert(sizeof(BlockI4G) == 19);

void dequantize_i4g(const void* src, float* dst, int64_t n);
// (algo/int_quant.h's engine_tensor makes these blocks from a GPTQ/AWQ layer.)

}  // namespace lowbit
