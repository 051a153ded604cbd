// The scalar reference of every quantized dot product: one weight row times one activation row (already
// quantized to activation_type(w)), written plainly in the order llama.cpp's x86 CPU backend sums it.
//
// For Q4_0 and Q4_K, which llama.cpp repacks on x86, that is one float per row: each block's exact integer sum times
// the block's two scales, added with one fused multiply-add per block (Q4_K's mins in a second float, subtracted at the
// end). The GPTQ/AWQ int4 groups (I4G), which llama.cpp does not have, take Q4_0's order. For the other types, ggml's
// AVX2 vec_dot order: each block's integer products are exact, grouped in eight lanes (lane l holds the products of
// values 4l..4l+3 of every 32-value group, times the group's integer scales); each block's lanes are converted to float
// and accumulated into eight float lanes with one fused multiply-add by the block's float scale; the lanes are added
// pairwise at the end ((0+4)+(2+6))+((1+5)+(3+7)). Types with per-block offsets (Q4_1, Q5_1, Q2_K, Q5_K) add their
// offset terms as ggml does, each type its own way (see dot_reference.cc). F16 and BF16 weights meet activations
// rounded to their own type in eight float lanes: F16 one FMA per value, BF16 in the order of AVX512-BF16's vdpbf16ps,
// flushing as it does, so that CPUs with the instruction run it directly.
//
// On a CPU with AMX (Sapphire Rapids and later) llama.cpp multiplies Q8_0, Q4_1 and IQ4_XS weights in its AMX
// backend (ggml-cpu/amx/mmq.cpp), in batches and token by token, in Q4_0's order: each block's exact integer sum
// times d_w * d_a, one FMA per block into one float (Q4_1: then m_w * s_a, a second FMA; IQ4_XS: per super-block,
// its groups' sums times their scales added as integers). lowbit sums them that way there too (SumOrder::kAmx), so
// their batches can run on AMX tiles (ops/amx_matmul.h; Q8_0's and IQ4_XS's do) with token by token's bits.
//
// The SIMD kernels (simd_matmul.cc) must give the same bits as these functions for every input; tests check that
// and check these functions against llama.cpp's own output (tests/ops/ggml_vecdot_test.cc).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace lowbit {

using RowDotFn = float (*)(const void* w_row, const void* act_row, int64_t n);

// Which order the types llama.cpp multiplies in its own way with AMX (Q8_0, Q4_1, IQ4_XS) sum in: the CPU's (kAmx
// where it has AMX's int8 tiles and Linux lets a process use them, else kVecDot), or one of the two where a test
// sets it, so that both run on any machine. set_sum_order returns the setting before.
enum class SumOrder { kByCpu, kVecDot, kAmx };
SumOrder set_sum_order(SumOrder order);
bool amx_sum_order();  // whether Q8_0, Q4_1 and IQ4_XS sum in the AMX order now

// The reference dot for weights of `type` in the order in force (null if the type has no quantized dot: F32, F64,
// ...).
RowDotFn reference_row_dot(DType type);

// y[t][o] = reference_row_dot(W row o, quantized x[t]) for every token: the scalar matmul the SIMD kernels are
// tested against. Each output is computed in a fixed order, so the result does not depend on `threads`.
void matmul_reference(const Tensor& w, const float* x, int64_t n_tokens, float* y, int threads);

}  // namespace lowbit
