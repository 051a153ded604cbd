#include "io/gptq_pack.h"

#include <cmath>

#include "core/float_formats.h"
#include "util/error.h"

namespace lowbit {

namespace {

// Value k of a little-endian bit stream of `bits`-wide fields spread over words word(0), word(1), ...
// (word(w) is a reference into a strided array).
template <typename WordAt>
void put_field(WordAt word, int64_t k, int bits, uint32_t v) {
  const int64_t bit = k * bits;
  const int64_t w = bit / 32;
  const int shift = static_cast<int>(bit % 32);
  word(w) |= v << shift;
  if (shift + bits > 32) word(w + 1) |= v >> (32 - shift);
}

template <typename WordAt>
uint32_t get_field(WordAt word, int64_t k, int bits) {
  const int64_t bit = k * bits;
  const int64_t w = bit / 32;
  const int shift = static_cast<int>(bit % 32);
  uint64_t v = word(w) >> shift;
  if (shift + bits > 32) v |= static_cast<uint64_t>(word(w + 1)) << (32 - shift);
  return static_cast<uint32_t>(v & ((1u << bits) - 1));
}

std::vector<uint16_t> to_f16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_f16(v[i]);
  return out;
}

std::vector<float> from_f16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f16_to_f32(v[i]);
  return out;
}

// Sizes are products of untrusted numbers: bound each factor before multiplying.
void check_dims(const char* where, int64_t n_in, int64_t n_out, int64_t n_groups) {
  constexpr int64_t kMax = int64_t{1} << 24;
  check(n_in > 0 && n_in <= kMax && n_out > 0 && n_out <= kMax, where, "bad shape {}x{}", n_out, n_in);
  check(n_groups > 0 && n_groups <= n_in, where, "bad group count {} for {} input columns", n_groups, n_in);
}

struct Shape2 {
  int64_t rows, cols;
};

void check_sizes(const char* where, size_t qweight, Shape2 want_w, size_t qzeros, Shape2 want_z, size_t scales,
                 Shape2 want_s) {
  auto one = [&](const char* what, size_t have, Shape2 want) {
    check(have == static_cast<size_t>(want.rows * want.cols), where, "{} has {} values, want {}x{}", what, have,
          want.rows, want.cols);
  };
  one("qweight", qweight, want_w);
  one("qzeros", qzeros, want_z);
  one("scales", scales, want_s);
}

QuantizedLinear empty_layer(int64_t n_in, int64_t n_out, int bits, int group_size) {
  QuantizedLinear ql;
  ql.n_in = n_in;
  ql.n_out = n_out;
  ql.bits = bits;
  ql.group_size = group_size;
  return ql;
}

}  // namespace

GptqPacked pack_gptq(const QuantizedLinear& ql, GptqCheckpointFormat format) {
  const char* where = "pack_gptq";
  ql.validate(where);
  const int bits = ql.bits;
  check(bits == 2 || bits == 3 || bits == 4 || bits == 8, where, "GPTQ packs 2, 3, 4 or 8 bits, not {}", bits);
  check(ql.n_in % 32 == 0, where, "n_in {} is not a multiple of 32", ql.n_in);
  check((ql.n_out * bits) % 32 == 0, where, "n_out {} x {} bits is not a whole number of int32", ql.n_out, bits);
  GptqPacked p;
  p.bits = bits;
  p.group_size = ql.group_size;
  p.n_in = ql.n_in;
  p.n_out = ql.n_out;
  p.n_groups = ql.n_groups();
  const int64_t n_out = ql.n_out;
  const int64_t wrows = ql.n_in * bits / 32, zcols = n_out * bits / 32;
  std::vector<uint32_t> qw(static_cast<size_t>(wrows * n_out), 0u), qz(static_cast<size_t>(p.n_groups * zcols), 0u);
  for (int64_t o = 0; o < n_out; ++o) {
    auto word = [&](int64_t w) -> uint32_t& { return qw[w * n_out + o]; };
    for (int64_t i = 0; i < ql.n_in; ++i) put_field(word, i, bits, ql.q[o * ql.n_in + i]);
  }
  const int offset = format == GptqCheckpointFormat::kV1 ? 1 : 0;
  for (int64_t g = 0; g < p.n_groups; ++g) {
    auto word = [&](int64_t w) -> uint32_t& { return qz[g * zcols + w]; };
    for (int64_t o = 0; o < n_out; ++o) {
      const float z = ql.zeros[g * n_out + o];
      check(z == std::nearbyint(z) && z >= offset && z <= ql.maxq(), where,
            "zero {} of group {} row {} cannot be stored in {} bits{}", z, g, o, bits,
            offset ? " with the v1 (zero - 1) convention; use gptq_v2" : "");
      put_field(word, o, bits, static_cast<uint32_t>(z) - offset);
    }
  }
  p.qweight.assign(qw.begin(), qw.end());
  p.qzeros.assign(qz.begin(), qz.end());
  p.scales = to_f16(ql.scales);
  p.g_idx = ql.g_idx;
  return p;
}

QuantizedLinear unpack_gptq(const GptqPacked& p, GptqCheckpointFormat format) {
  const char* where = "unpack_gptq";
  const int bits = p.bits;
  check(bits == 2 || bits == 3 || bits == 4 || bits == 8, where, "GPTQ packs 2, 3, 4 or 8 bits, not {}", bits);
  check_dims(where, p.n_in, p.n_out, p.n_groups);
  check(p.n_in % 32 == 0 && (p.n_out * bits) % 32 == 0, where, "shape {}x{} does not pack into int32 at {} bits",
        p.n_out, p.n_in, bits);
  const int64_t n_out = p.n_out, wrows = p.n_in * bits / 32, zcols = n_out * bits / 32;
  check_sizes(where, p.qweight.size(), {wrows, n_out}, p.qzeros.size(), {p.n_groups, zcols}, p.scales.size(),
              {p.n_groups, n_out});
  QuantizedLinear ql = empty_layer(p.n_in, n_out, bits, p.group_size);
  if (p.g_idx.empty()) {
    check(p.group_size == -1 || p.group_size > 0, where, "bad group_size {}", p.group_size);
    const int64_t gl = p.group_size < 0 ? p.n_in : p.group_size;
    check((p.n_in + gl - 1) / gl == p.n_groups, where, "{} groups do not match group_size {}", p.n_groups, gl);
    ql.g_idx.resize(static_cast<size_t>(p.n_in));
    for (int64_t i = 0; i < p.n_in; ++i) ql.g_idx[i] = static_cast<int32_t>(i / gl);
  } else {
    check(p.g_idx.size() == static_cast<size_t>(p.n_in), where, "g_idx has {} values, want {}", p.g_idx.size(),
          p.n_in);
    ql.g_idx = p.g_idx;
  }
  ql.q.resize(static_cast<size_t>(n_out * p.n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    auto word = [&](int64_t w) { return static_cast<uint32_t>(p.qweight[w * n_out + o]); };
    for (int64_t i = 0; i < p.n_in; ++i) ql.q[o * p.n_in + i] = static_cast<uint8_t>(get_field(word, i, bits));
  }
  const float offset = format == GptqCheckpointFormat::kV1 ? 1.f : 0.f;
  ql.zeros.resize(static_cast<size_t>(p.n_groups * n_out));
  for (int64_t g = 0; g < p.n_groups; ++g) {
    auto word = [&](int64_t w) { return static_cast<uint32_t>(p.qzeros[g * zcols + w]); };
    for (int64_t o = 0; o < n_out; ++o) ql.zeros[g * n_out + o] = static_cast<float>(get_field(word, o, bits)) + offset;
  }
  ql.scales = from_f16(p.scales);
  ql.sym = false;  // not recorded in the tensors; quantize_config.json says
  ql.validate(where);
  return ql;
}

AwqPacked pack_awq_gemm(const QuantizedLinear& ql) {
  const char* where = "pack_awq_gemm";
  ql.validate(where);
  check(ql.bits == 4, where, "AWQ GEMM packs 4 bits only, not {}", ql.bits);
  check(ql.n_out % 8 == 0, where, "n_out {} is not a multiple of 8", ql.n_out);
  const int64_t gl = ql.group_size < 0 ? ql.n_in : ql.group_size;
  check(ql.n_in % gl == 0, where, "n_in {} is not a multiple of group_size {}", ql.n_in, gl);
  for (int64_t i = 0; i < ql.n_in; ++i)
    check(ql.g_idx[i] == i / gl, where, "column {} is in group {}: AWQ has no act-order", i, ql.g_idx[i]);
  AwqPacked p;
  p.group_size = ql.group_size;
  p.n_in = ql.n_in;
  p.n_out = ql.n_out;
  p.n_groups = ql.n_groups();
  const int64_t n_out = ql.n_out, cols = n_out / 8;
  p.qweight.assign(static_cast<size_t>(ql.n_in * cols), 0);
  p.qzeros.assign(static_cast<size_t>(p.n_groups * cols), 0);
  for (int64_t i = 0; i < ql.n_in; ++i) {
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t word = 0;
      for (int k = 0; k < 8; ++k) word |= static_cast<uint32_t>(ql.q[(c * 8 + kAwqOrder[k]) * ql.n_in + i]) << (4 * k);
      p.qweight[i * cols + c] = static_cast<int32_t>(word);
    }
  }
  for (int64_t g = 0; g < p.n_groups; ++g) {
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t word = 0;
      for (int k = 0; k < 8; ++k) {
        const float z = ql.zeros[g * n_out + c * 8 + kAwqOrder[k]];
        check(z == std::nearbyint(z) && z >= 0.f && z <= 15.f, where, "zero {} of group {} is not in 0..15", z, g);
        word |= static_cast<uint32_t>(z) << (4 * k);
      }
      p.qzeros[g * cols + c] = static_cast<int32_t>(word);
    }
  }
  p.scales = to_f16(ql.scales);
  return p;
}

QuantizedLinear unpack_awq_gemm(const AwqPacked& p) {
  const char* where = "unpack_awq_gemm";
  check(p.bits == 4, where, "AWQ GEMM packs 4 bits only, not {}", p.bits);
  check_dims(where, p.n_in, p.n_out, p.n_groups);
  check(p.n_out % 8 == 0, where, "n_out {} is not a multiple of 8", p.n_out);
  check(p.group_size == -1 || p.group_size > 0, where, "bad group_size {}", p.group_size);
  const int64_t gl = p.group_size < 0 ? p.n_in : p.group_size;
  check(p.n_in % gl == 0 && p.n_in / gl == p.n_groups, where, "{} groups do not match n_in {} / group_size {}",
        p.n_groups, p.n_in, gl);
  const int64_t n_out = p.n_out, cols = n_out / 8;
  check_sizes(where, p.qweight.size(), {p.n_in, cols}, p.qzeros.size(), {p.n_groups, cols}, p.scales.size(),
              {p.n_groups, n_out});
  QuantizedLinear ql = empty_layer(p.n_in, n_out, 4, p.group_size);
  ql.q.resize(static_cast<size_t>(n_out * p.n_in));
  for (int64_t i = 0; i < p.n_in; ++i) {
    for (int64_t c = 0; c < cols; ++c) {
      const uint32_t word = static_cast<uint32_t>(p.qweight[i * cols + c]);
      for (int k = 0; k < 8; ++k) ql.q[(c * 8 + kAwqOrder[k]) * p.n_in + i] = static_cast<uint8_t>((word >> (4 * k)) & 15u);
    }
  }
  ql.zeros.resize(static_cast<size_t>(p.n_groups * n_out));
  for (int64_t g = 0; g < p.n_groups; ++g) {
    for (int64_t c = 0; c < cols; ++c) {
      const uint32_t word = static_cast<uint32_t>(p.qzeros[g * cols + c]);
      for (int k = 0; k < 8; ++k) ql.zeros[g * n_out + c * 8 + kAwqOrder[k]] = static_cast<float>((word >> (4 * k)) & 15u);
    }
  }
  ql.scales = from_f16(p.scales);
  ql.g_idx.resize(static_cast<size_t>(p.n_in));
  for (int64_t i = 0; i < p.n_in; ++i) ql.g_idx[i] = static_cast<int32_t>(i / gl);
  return ql;
}

}  // namespace lowbit
