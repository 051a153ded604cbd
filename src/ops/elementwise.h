// The small per-row operations of a transformer forward pass, in float with a fixed evaluation order (so the
// engine's results do not depend on how rows are split across threads).
#pragma once

#include <cstdint>

namespace lowbit {

// out = x / sqrt(mean(x^2) + eps) * w (the sum of squares in double). `out` may equal `x`.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

// In place: x = exp(x - max) / sum (n > 0).
void softmax(float* x, int64_t n);

inline float silu(float x) { return x / (1.0f + __builtin_expf(-x)); }

// SwiGLU's gating, in place: gate[i] = silu(gate[i]) * up[i].
void swiglu(float* gate, const float* up, int64_t n);

}  // namespace lowbit
