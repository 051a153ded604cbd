#include "io/llama2c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/float_formats.h"
#include "io/hf_source.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const std::string kStories = std::string(LOWBIT_SOURCE_DIR) + "/models/stories260K/stories260K.bin";
const std::string kGutenbergBin = std::string(LOWBIT_SHARED_DATA) + "/models/lowbit-tiny-gutenberg/model.bin";
const std::string kGutenbergHf = std::string(LOWBIT_SOURCE_DIR) + "/models/tiny-gutenberg";

float raw_float(const MappedFile& f, uint64_t float_index) {
  float v;
  std::memcpy(&v, f.data() + 28 + float_index * 4, 4);
  return v;
}

TEST(Llama2c, Stories260KHeaderAndConfig) {
  auto m = open_llama2c_model(kStories);
  const auto& c = m->config();
  EXPECT_EQ(m->format(), "llama2c");
  EXPECT_EQ(c.arch, "llama");
  const std::vector<int64_t> dims = {c.n_embd, c.n_ff, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_vocab,
                                     c.n_ctx_train};
  EXPECT_EQ(dims, (std::vector<int64_t>{64, 172, 5, 8, 4, 8, 512, 512}));
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.rope.neox);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope.theta, 10000.0f);
  // token_embd + 5 x 9 + output_norm; no output (shared classifier).
  EXPECT_EQ(m->tensor_infos().size(), 47u);
  EXPECT_FALSE(m->has_tensor("output.weight"));
  const auto mapped = MappedFile::open(kStories);
  const auto h = parse_llama2c_header(mapped->bytes(), kStories);
  EXPECT_TRUE(h.has_freq_cis);
  EXPECT_TRUE(h.shared_classifier);
}

// Offsets (in floats after the header) from PROVENANCE.md's listing: tok_emb[512,64], rms_att[5,64],
// wq[5,64,64], wk[5,32,64], wv[5,32,64], wo[5,64,64], rms_ffn[5,64], w1[5,172,64], w2[5,64,172], w3[5,172,64],
// rms_final[64].
TEST(Llama2c, Stories260KTensorsAreTheRawFloats) {
  auto m = open_llama2c_model(kStories);
  const auto mapped = MappedFile::open(kStories);
  struct Expect {
    std::string name;
    uint64_t offset;
    int64_t ne0, ne1;
  };
  const uint64_t emb = 0, rms_att = 32768, wq = rms_att + 320, wk = wq + 20480, wv = wk + 10240, wo = wv + 10240,
                 rms_ffn = wo + 20480, w1 = rms_ffn + 320, w2 = w1 + 55040, w3 = w2 + 55040, fin = w3 + 55040;
  EXPECT_EQ(fin + 64, 260032u);
  const Expect cases[] = {
      {"token_embd.weight", emb, 64, 512},           {"blk.0.attn_norm.weight", rms_att, 64, 1},
      {"blk.4.attn_norm.weight", rms_att + 256, 64, 1}, {"blk.1.attn_q.weight", wq + 4096, 64, 64},
      {"blk.2.attn_k.weight", wk + 2 * 2048, 64, 32}, {"blk.3.attn_v.weight", wv + 3 * 2048, 64, 32},
      {"blk.4.attn_output.weight", wo + 4 * 4096, 64, 64}, {"blk.2.ffn_norm.weight", rms_ffn + 128, 64, 1},
      {"blk.3.ffn_gate.weight", w1 + 3 * 11008, 64, 172}, {"blk.3.ffn_down.weight", w2 + 3 * 11008, 172, 64},
      {"blk.3.ffn_up.weight", w3 + 3 * 11008, 64, 172}, {"output_norm.weight", fin, 64, 1},
  };
  for (const auto& c : cases) {
    const auto t = m->tensor(c.name);
    EXPECT_EQ(t.ne()[0], c.ne0) << c.name;
    EXPECT_EQ(t.ne()[1], c.ne1) << c.name;
    const auto v = tensor_to_f32(t);
    for (size_t i : {size_t{0}, size_t{1}, v.size() - 1})
      EXPECT_EQ(v[i], raw_float(*mapped, c.offset + i)) << c.name << " " << i;
  }
  EXPECT_THROW(m->tensor("blk.5.attn_q.weight"), Error);
}

// The same weights as an HF F16 folder and a llama2.c F32 file: after name mapping and the rotary permutation
// the HF values must equal the llama2.c values rounded to f16 (without the permutation attn_q/attn_k would not).
TEST(Llama2c, GutenbergHfEqualsLlama2cRoundedToF16) {
  if (!fs::exists(kGutenbergBin)) GTEST_SKIP() << "shared fixture absent: " << kGutenbergBin;
  auto l2c = open_llama2c_model(kGutenbergBin);
  auto hf = open_hf_model(kGutenbergHf);
  ASSERT_EQ(l2c->tensor_infos().size(), hf->tensor_infos().size());
  for (size_t i = 0; i < hf->tensor_infos().size(); ++i) {
    const auto& a = l2c->tensor_infos()[i];
    const auto& b = hf->tensor_infos()[i];
    ASSERT_EQ(a.name, b.name);
    ASSERT_EQ(a.ne, b.ne) << a.name;
    const auto fa = tensor_to_f32(l2c->tensor(a.name));
    const auto fb = tensor_to_f32(hf->tensor(b.name));
    size_t bad = 0;
    for (size_t k = 0; k < fa.size(); ++k) bad += f16_to_f32(f32_to_f16(fa[k])) != fb[k];
    EXPECT_EQ(bad, 0u) << a.name;
  }
}

std::vector<uint8_t> synthetic_llama2c(int32_t vocab, bool freq) {
  // dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, seq 4: weights are 0, 1, 2, ... in file order.
  const int32_t header[7] = {8, 16, 1, 2, 1, vocab, 4};
  const int64_t v = std::abs(vocab);
  int64_t n = v * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 3 * 128 + 8;
  if (freq) n += 4 * 4;
  if (vocab < 0) n += v * 8;
  std::vector<uint8_t> out(28 + n * 4);
  std::memcpy(out.data(), header, 28);
  for (int64_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(i);
    std::memcpy(out.data() + 28 + i * 4, &f, 4);
  }
  return out;
}

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  const auto path = (fs::temp_directory_path() / (name + std::to_string(::getpid()))).string();
  write_file_atomic(path, bytes);
  return path;
}

TEST(Llama2c, SeparateClassifierFollowsTheRopeTables) {
  const auto path = write_temp("l2c_cls", synthetic_llama2c(-10, true));
  auto m = open_llama2c_model(path);
  EXPECT_FALSE(m->config().tied_embeddings);
  EXPECT_EQ(m->config().n_vocab, 10);
  const auto out = tensor_to_f32(m->tensor("output.weight"));
  ASSERT_EQ(out.size(), 80u);
  // 80 embedding + 8 + 64 + 32 + 32 + 64 + 8 + 384 + 8 = 680 weights, then 16 freq floats.
  EXPECT_EQ(out[0], 696.0f);
  EXPECT_EQ(tensor_to_f32(m->tensor("output_norm.weight"))[0], 672.0f);
  EXPECT_EQ(tensor_to_f32(m->tensor("blk.0.ffn_up.weight"))[0], 80 + 8 + 64 + 32 + 32 + 64 + 8 + 256.0f);
  fs::remove(path);
  const auto no_freq = write_temp("l2c_nofreq", synthetic_llama2c(-10, false));
  EXPECT_EQ(tensor_to_f32(open_llama2c_model(no_freq)->tensor("output.weight"))[0], 680.0f);
  fs::remove(no_freq);
}

TEST(Llama2c, EveryTruncationIsRejected) {
  const auto full = synthetic_llama2c(10, true);
  const size_t without_freq = full.size() - 16 * 4;
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    if (n == without_freq) {
      EXPECT_FALSE(parse_llama2c_header(cut, "x").has_freq_cis);
      continue;
    }
    EXPECT_THROW(parse_llama2c_header(cut, "x"), Error) << n;
  }
  EXPECT_TRUE(parse_llama2c_header(full, "x").has_freq_cis);
}

TEST(Llama2c, HostileHeaders) {
  auto with = [](std::initializer_list<int32_t> h) {
    auto f = synthetic_llama2c(10, true);
    std::memcpy(f.data(), std::data(h), 28);
    try {
      parse_llama2c_header(f, "m.bin");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(with({8, 16, 1, 3, 1, 10, 4}).find("not a multiple of n_heads"), std::string::npos);
  EXPECT_NE(with({8, 16, 1, 2, 3, 10, 4}).find("n_kv_heads"), std::string::npos);
  EXPECT_NE(with({8, 16, 0, 2, 1, 10, 4}).find("non-positive"), std::string::npos);
  EXPECT_NE(with({8, 16, 1, 2, 1, 0, 4}).find("vocab_size"), std::string::npos);
  EXPECT_NE(with({8, 16, 1, 2, 1, INT32_MIN, 4}).find("vocab_size"), std::string::npos);
  EXPECT_NE(with({6, 16, 1, 2, 1, 10, 4}).find("odd"), std::string::npos);
  const auto huge = with({1 << 30, INT32_MAX, INT32_MAX, 2, 1, INT32_MAX, INT32_MAX});
  EXPECT_NE(huge.find("implies"), std::string::npos) << huge;
  EXPECT_EQ(huge.rfind("m.bin: ", 0), 0u);
  EXPECT_NE(with({8, 16, 2, 2, 1, 10, 4}).find("implies"), std::string::npos);
}

TEST(Llama2c, MissingTokenizerIsNamed) {
  EXPECT_NO_THROW(open_llama2c_model(kStories, fs::path(kStories).parent_path() / "tok512.model"));
  try {
    open_llama2c_model(kStories, "/nonexistent/tok.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tok.bin"), std::string::npos);
  }
}

}  // namespace
}  // namespace lowbit
