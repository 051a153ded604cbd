// Rotary position embedding. GGUF/llama.cpp's "normal" mode rotates adjacent pairs (x[2i], x[2i+1]); NeoX mode
// (Qwen, GPT-NeoX) rotates halves (x[i], x[i + d/2]). Pair i turns by pos * inv_freq[i].
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/config.h"

namespace lowbit {

// inv_freq[i] = theta^(-2i/d), divided by the linear factor (RopeScaling::Linear) and by freq_factors[i] when
// given (Llama 3's rope_freqs.weight; d/2 values). Throws Error if freq_factors has the wrong length.
std::vector<float> rope_inv_freq(int64_t head_dim, const RopeConfig& rope, std::span<const float> freq_factors = {});

// Llama 3's per-pair frequency divisors, computed as llama.cpp's converter does for rope_freqs.weight.
std::vector<float> llama3_rope_factors(const ModelConfig& config);

// The turn of each pair at position `pos`: cos_sin[2i], cos_sin[2i + 1] = cos, sin of pos * inv_freq[i], for the
// head_dim / 2 pairs. A token's heads (and its Q and K) all turn by the same angles: compute them once a token.
void rope_angles(int64_t head_dim, int64_t pos, const float* inv_freq, float* cos_sin);
// Rotates one head of `head_dim` floats in place by angles from rope_angles.
void rope_rotate(float* x, int64_t head_dim, const float* cos_sin, bool neox);
// The same for n_heads heads side by side (a token's Q or K heads), in SIMD where the CPU has AVX2: the same floats.
void rope_rotate_heads(float* x, int64_t n_heads, int64_t head_dim, const float* cos_sin, bool neox);
// Both steps, for one head.
void rope_rotate(float* x, int64_t head_dim, int64_t pos, const float* inv_freq, bool neox);

}  // namespace lowbit
