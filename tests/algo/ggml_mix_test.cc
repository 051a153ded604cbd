#include "algo/ggml_mix.h"

#include <gtest/gtest.h>

#include <map>

#include "util/error.h"

namespace lowbit {
namespace {

TensorInfo info(std::string name, std::vector<int64_t> ne, DType type = DType::F32) {
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.n_dims = static_cast<int>(ne.size());
  for (size_t i = 0; i < ne.size(); ++i) t.ne[i] = ne[i];
  return t;
}

// The bundled tiny-gutenberg model's tensors as llama.cpp's converter writes them (tied embeddings).
std::vector<TensorInfo> tiny_gutenberg_tensors(int64_t dim = 256, int64_t ff = 512, int n_layer = 4) {
  std::vector<TensorInfo> v{info("token_embd.weight", {dim, 4096}), info("output_norm.weight", {dim})};
  for (int i = 0; i < n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) v.push_back(info(p + n + ".weight", {dim, dim}));
    v.push_back(info(p + "ffn_gate.weight", {dim, ff}));
    v.push_back(info(p + "ffn_up.weight", {dim, ff}));
    v.push_back(info(p + "ffn_down.weight", {ff, dim}));
    v.push_back(info(p + "attn_norm.weight", {dim}));
    v.push_back(info(p + "ffn_norm.weight", {dim}));
  }
  return v;
}

ModelConfig tiny_gutenberg_config() {
  ModelConfig c;
  c.n_vocab = 4096;
  c.n_embd = 256;
  c.n_layer = 4;
  c.n_head = c.n_head_kv = 4;
  c.n_ff = 512;
  c.tied_embeddings = true;
  return c;
}

std::map<std::string, std::string> plan_map(const std::vector<TensorPlan>& plans) {
  std::map<std::string, std::string> m;
  for (const auto& p : plans) m[p.name()] = dtype_name(p.target_type);
  return m;
}

// Expected lists read from llama-quantize's own outputs in shared/data/.../llama.cpp-reference (model-*.gguf).
TEST(GgmlMix, Q4KMMatchesLlamaQuantize) {
  MixOptions o;
  o.ftype = FileType::Q4_K_M;
  auto m = plan_map(plan_tensor_types(tiny_gutenberg_config(), tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["token_embd.weight"], "q6_K");
  EXPECT_EQ(m["output_norm.weight"], "f32");
  for (int i = 0; i < 4; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const bool more = i >= 2;  // use_more_bits(i, 4) for i = 2, 3
    EXPECT_EQ(m[p + "attn_v.weight"], more ? "q6_K" : "q4_K") << i;
    EXPECT_EQ(m[p + "ffn_down.weight"], more ? "q6_K" : "q4_K") << i;
    EXPECT_EQ(m[p + "attn_q.weight"], "q4_K");
    EXPECT_EQ(m[p + "ffn_up.weight"], "q4_K");
    EXPECT_EQ(m[p + "attn_norm.weight"], "f32");
  }
}

TEST(GgmlMix, Q2KMatchesLlamaQuantize) {
  MixOptions o;
  o.ftype = FileType::Q2_K;
  auto m = plan_map(plan_tensor_types(tiny_gutenberg_config(), tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["token_embd.weight"], "q6_K");
  for (int i = 0; i < 4; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    EXPECT_EQ(m[p + "attn_v.weight"], "q3_K");
    EXPECT_EQ(m[p + "attn_output.weight"], "q3_K");
    EXPECT_EQ(m[p + "ffn_down.weight"], "q3_K");
    EXPECT_EQ(m[p + "attn_k.weight"], "q2_K");
    EXPECT_EQ(m[p + "ffn_gate.weight"], "q2_K");
  }
}

TEST(GgmlMix, LegacyTypesKeepTiedEmbeddingAtQ6KOrQ8) {
  MixOptions o;
  o.ftype = FileType::Q4_0;
  auto m = plan_map(plan_tensor_types(tiny_gutenberg_config(), tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["token_embd.weight"], "q6_K");  // the tied output head gets Q6_K, as in model-q4_0.gguf
  EXPECT_EQ(m["blk.0.ffn_down.weight"], "q4_0");
  o.ftype = FileType::Q8_0;
  m = plan_map(plan_tensor_types(tiny_gutenberg_config(), tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["token_embd.weight"], "q8_0");
  o.pure = true;
  o.ftype = FileType::Q4_K_M;
  m = plan_map(plan_tensor_types(tiny_gutenberg_config(), tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["token_embd.weight"], "q4_K");
  EXPECT_EQ(m["blk.3.attn_v.weight"], "q4_K");
}

TEST(GgmlMix, OrderIsLayerThenName) {
  MixOptions o;
  auto plans = plan_tensor_types(tiny_gutenberg_config(), tiny_gutenberg_tensors(), o);
  ASSERT_GE(plans.size(), 5u);
  EXPECT_EQ(plans[0].name(), "output_norm.weight");
  EXPECT_EQ(plans[1].name(), "token_embd.weight");
  EXPECT_EQ(plans[2].name(), "blk.0.attn_k.weight");
  EXPECT_EQ(plans[3].name(), "blk.0.attn_norm.weight");
  EXPECT_EQ(plans.back().name(), "blk.3.ffn_up.weight");
}

TEST(GgmlMix, MisfitRowsFallBackLikeLlamaCpp) {
  // stories260K: dim 64, FFN 172. 64-wide rows cannot hold K-quants; 172 fits no block type at all.
  ModelConfig c = tiny_gutenberg_config();
  c.n_embd = 64;
  c.n_ff = 172;
  c.n_layer = 5;
  MixOptions o;
  o.ftype = FileType::Q4_K_M;
  auto plans = plan_tensor_types(c, tiny_gutenberg_tensors(64, 172, 5), o);
  auto m = plan_map(plans);
  EXPECT_EQ(m["blk.1.attn_q.weight"], "q5_0");     // Q4_K -> Q5_0
  EXPECT_EQ(m["blk.0.ffn_down.weight"], "f16");    // 172 wide: Q6_K -> Q8_0 does not fit either
  EXPECT_EQ(m["token_embd.weight"], "q8_0");       // output head: row misfit -> Q8_0
  o.ftype = FileType::Q8_0;
  m = plan_map(plan_tensor_types(c, tiny_gutenberg_tensors(64, 172, 5), o));
  EXPECT_EQ(m["blk.0.ffn_down.weight"], "f16");    // llama.cpp aborts here; lowbit keeps F16
  EXPECT_EQ(m["blk.0.ffn_up.weight"], "q8_0");
  o.ftype = FileType::Q2_K;
  m = plan_map(plan_tensor_types(c, tiny_gutenberg_tensors(64, 172, 5), o));
  EXPECT_EQ(m["blk.0.attn_k.weight"], "iq4_nl");   // Q2_K -> IQ4_NL
}

TEST(GgmlMix, OverridesAndGqaBumps) {
  ModelConfig c = tiny_gutenberg_config();
  c.n_head = 32;
  c.n_head_kv = 8;
  MixOptions o;
  o.ftype = FileType::Q2_K;
  auto m = plan_map(plan_tensor_types(c, tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["blk.0.attn_v.weight"], "q4_K");  // n_gqa >= 4
  o.tensor_type_overrides = {{"ffn_(up|gate)", DType::Q8_0}};
  o.token_embedding_type = DType::Q4_0;
  m = plan_map(plan_tensor_types(c, tiny_gutenberg_tensors(), o));
  EXPECT_EQ(m["blk.2.ffn_up.weight"], "q8_0");
  EXPECT_EQ(m["blk.2.ffn_down.weight"], "q3_K");
  EXPECT_EQ(m["token_embd.weight"], "q4_0");
  o.tensor_type_overrides = {{"ffn_(", DType::Q8_0}};
  EXPECT_THROW(plan_tensor_types(c, tiny_gutenberg_tensors(), o), Error);
}

TEST(GgmlMix, FileTypeNames) {
  EXPECT_EQ(file_type_from_name("q4_k_m"), FileType::Q4_K_M);
  EXPECT_EQ(static_cast<uint32_t>(*file_type_from_name("Q8_0")), 7u);
  EXPECT_FALSE(file_type_from_name("Q4_K_X").has_value());
}

}  // namespace
}  // namespace lowbit
