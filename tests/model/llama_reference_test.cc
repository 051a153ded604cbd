#include "model/llama.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "io/memory_source.h"
#include "support/every_call_threaded.h"
#include "support/ref_llama.h"
#include "util/error.h"

namespace lowbit {
namespace {

// dim 64, 2 layers, 4 heads sharing 2 KV heads, FFN 96, vocab 50.
ModelConfig small_config() {
  ModelConfig c;
  c.n_vocab = 50, c.n_embd = 64, c.n_layer = 2, c.n_ff = 96, c.n_ctx_train = 64;
  c.n_head = 4, c.n_head_kv = 2;
  return c;
}

// Qwen's NeoX rotation; Qwen2 adds Q/K/V biases, Qwen3 per-head Q/K norms (and here heads wider than n_embd/n_head).
ModelConfig qwen_config(int version) {
  ModelConfig c = small_config();
  c.arch = version == 2 ? "qwen2" : "qwen3";
  c.rope.neox = true;
  c.rope.theta = 1000000.0f;
  c.attn_qkv_bias = version == 2;
  c.attn_qk_norm = version == 3;
  if (version == 3) c.head_dim = 32;
  return c;
}

const std::vector<int32_t> kPrompt = {1, 7, 49, 3, 3, 20, 0, 11, 42, 5, 17, 30};

std::vector<float> eval_all(LlamaModel& m, const std::vector<int32_t>& tokens, int64_t n_past = 0) {
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.n_vocab()));
  m.eval(tokens, n_past, logits.data(), true);
  return logits;
}

// Every position's logits within `rel` of the reference, relative to that row's largest magnitude.
// Exact mode (no ggml rounding) unless `ggml_rounding`.
void expect_matches_reference(std::shared_ptr<const ModelSource> src, double rel = 1e-4, bool ggml_rounding = false) {
  EngineOptions options;
  options.ggml_rounding = ggml_rounding;
  LlamaModel model(src, options);
  const std::vector<float> got = eval_all(model, kPrompt);
  const auto want = testing::reference_llama_logits(*src, kPrompt);
  const int64_t nv = model.n_vocab();
  for (size_t t = 0; t < kPrompt.size(); ++t) {
    double scale = 0, err = 0;
    for (int64_t i = 0; i < nv; ++i) {
      scale = std::max(scale, std::abs(want[t][i]));
      err = std::max(err, std::abs(got[t * nv + i] - want[t][i]));
    }
    ASSERT_GT(scale, 0.1) << "position " << t;  // the check is meaningless on vanishing logits
    EXPECT_LE(err / scale, rel) << "position " << t;
  }
}

TEST(LlamaEngine, MatchesReferenceLlamaRope) {
  expect_matches_reference(make_random_model(small_config(), 1));
}

TEST(LlamaEngine, MatchesReferenceTiedEmbeddings) {
  ModelConfig c = small_config();
  c.tied_embeddings = true;
  expect_matches_reference(make_random_model(c, 2));
}

TEST(LlamaEngine, MatchesReferenceQwen2NeoxWithBiases) { expect_matches_reference(make_random_model(qwen_config(2), 3)); }

TEST(LlamaEngine, MatchesReferenceQwen3QkNormWideHeads) { expect_matches_reference(make_random_model(qwen_config(3), 4)); }

ModelConfig llama3_config() {
  ModelConfig c = small_config();
  c.rope.theta = 500000.0f;
  c.rope.scaling = RopeScaling::Llama3;
  c.rope.factor = 8.0f;
  c.rope.low_freq_factor = 1.0f;
  c.rope.high_freq_factor = 4.0f;
  c.rope.original_context = 64;  // small, so the tiny head's frequencies fall in all three bands
  return c;
}

TEST(LlamaEngine, Llama3FactorsMatchReferenceFormula) {
  const ModelConfig c = llama3_config();
  const std::vector<float> got = llama3_rope_factors(c);
  const std::vector<double> want = testing::reference_llama3_factors(c);
  ASSERT_EQ(got.size(), want.size());
  bool kept = false, scaled = false, between = false;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-5 * want[i]) << i;
    kept |= want[i] == 1.0, scaled |= want[i] == 8.0, between |= want[i] > 1.0 && want[i] < 8.0;
  }
  EXPECT_TRUE(kept && scaled && between);
}

TEST(LlamaEngine, MatchesReferenceLlama3ScalingFromConfig) {
  expect_matches_reference(make_random_model(llama3_config(), 5));
}

TEST(LlamaEngine, RopeFreqsTensorOverridesConfig) {
  // Converters store the factors as rope_freqs.weight; arbitrary factors there must be used as given.
  auto src = make_random_model(small_config(), 6);
  std::vector<float> factors;
  for (int i = 0; i < 8; ++i) factors.push_back(1.0f + 0.7f * static_cast<float>(i));
  src->add(make_f32_tensor("rope_freqs.weight", {8}, factors));
  std::shared_ptr<const ModelSource> with = std::move(src);
  expect_matches_reference(with);
  // and they change the result (so the tensor is not silently ignored)
  LlamaModel a(with), b(make_random_model(small_config(), 6));
  EXPECT_NE(eval_all(a, kPrompt), eval_all(b, kPrompt));
}

TEST(LlamaEngine, MatchesReferenceLinearScaling) {
  ModelConfig c = small_config();
  c.rope.scaling = RopeScaling::Linear;
  c.rope.factor = 4.0f;
  expect_matches_reference(make_random_model(c, 7));
}

TEST(LlamaEngine, MatchesReferenceF16AndBF16Weights) {
  expect_matches_reference(make_random_model(small_config(), 8, DType::F16));
  expect_matches_reference(make_random_model(small_config(), 9, DType::BF16));
}

TEST(LlamaEngine, MatchesReferenceBlockQuantizedWeights) {
  // The reference reads the same dequantized values, so only float rounding separates them.
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    ASSERT_NE(type_traits(t).quantize, nullptr);
    SCOPED_TRACE(dtype_name(t));
    expect_matches_reference(make_random_model(small_config(), 20, t));
  }
}

TEST(LlamaEngine, GgmlRoundingStaysNearReferenceButChangesLogits) {
  // llama.cpp's roundings (F16 KV cache and Q, F16 or 8-bit activations) cost about their own precision.
  for (auto [t, rel] : {std::pair{DType::F32, 5e-3}, {DType::F16, 5e-3}, {DType::Q8_0, 5e-2}}) {
    SCOPED_TRACE(dtype_name(t));
    std::shared_ptr<const ModelSource> src = make_random_model(small_config(), 21, t);
    expect_matches_reference(src, rel, true);
    EngineOptions exact;
    exact.ggml_rounding = false;
    LlamaModel a(src), b(src, exact);
    EXPECT_NE(eval_all(a, kPrompt), eval_all(b, kPrompt));
  }
}

TEST(LlamaEngine, BatchedEqualsOneTokenAtATime) {
  for (bool qwen : {false, true}) {
    ModelConfig c = small_config();
    c.rope.neox = c.attn_qkv_bias = qwen;
    std::shared_ptr<const ModelSource> src = make_random_model(c, 10, DType::F16);
    LlamaModel batched(src), single(src), split(src);
    const std::vector<float> all = eval_all(batched, kPrompt);
    const int64_t nv = c.n_vocab;
    std::vector<float> one(static_cast<size_t>(nv));
    for (size_t t = 0; t < kPrompt.size(); ++t) {
      single.eval(std::span<const int32_t>(&kPrompt[t], 1), static_cast<int64_t>(t), one.data(), false);
      for (int64_t i = 0; i < nv; ++i) ASSERT_NEAR(one[i], all[t * nv + i], 1e-5 * (1 + std::abs(one[i]))) << t;
    }
    // two batches (5 + 7): the second sees the first through the cache; last-token-only logits
    const std::vector<int32_t> head(kPrompt.begin(), kPrompt.begin() + 5), tail(kPrompt.begin() + 5, kPrompt.end());
    eval_all(split, head);
    std::vector<float> last(static_cast<size_t>(nv));
    split.eval(tail, 5, last.data(), false);
    for (int64_t i = 0; i < nv; ++i) EXPECT_NEAR(last[i], all[(kPrompt.size() - 1) * nv + i], 1e-5 * (1 + std::abs(last[i])));
  }
}

TEST(LlamaEngine, RewritingCachePositionsOverwritesThem) {
  std::shared_ptr<const ModelSource> src = make_random_model(small_config(), 11);
  LlamaModel fresh(src), reused(src);
  eval_all(reused, {4, 4, 4, 4, 4, 4});
  EXPECT_EQ(eval_all(reused, {8, 9}, 2), [&] {
    eval_all(fresh, {4, 4});
    return eval_all(fresh, {8, 9}, 2);
  }());
}

TEST(LlamaEngine, ThreadCountDoesNotChangeLogits) {
  ModelConfig c = small_config();
  c.n_vocab = 300;  // many output blocks, so threads really split the rows
  const EveryCallThreaded every_call_threaded;  // this model's calls are a few KiB
  std::shared_ptr<const ModelSource> src = make_random_model(c, 12, DType::BF16);
  EngineOptions o1, o2, o3;
  o1.threads = 1, o2.threads = 2, o3.threads = 3;
  LlamaModel m1(src, o1), m2(src, o2), m3(src, o3);
  const std::vector<float> a = eval_all(m1, kPrompt), b = eval_all(m2, kPrompt), d = eval_all(m3, kPrompt);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.data(), d.data(), a.size() * sizeof(float)));
  m1.set_threads(2);
  const std::vector<float> e = eval_all(m1, kPrompt);
  EXPECT_EQ(0, std::memcmp(a.data(), e.data(), a.size() * sizeof(float)));
}

TEST(LlamaEngine, ContextDefaultsToTrainingAndCanBeSet) {
  std::shared_ptr<const ModelSource> src = make_random_model(small_config(), 13);
  EXPECT_EQ(LlamaModel(src).n_ctx(), 64);
  EngineOptions o;
  o.n_ctx = 16;
  EXPECT_EQ(LlamaModel(src, o).n_ctx(), 16);
  o.n_ctx = -1;
  EXPECT_THROW(LlamaModel(src, o), Error);
  o.n_ctx = int64_t{1} << 40;
  EXPECT_THROW(LlamaModel(src, o), Error);
}

template <typename F>
void expect_error_mentioning(F&& f, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no Error thrown; wanted one mentioning " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(LlamaEngine, ShapeMismatchNamesFileAndTensor) {
  auto src = make_random_model(small_config(), 14);
  src->add(make_f32_tensor("blk.1.attn_k.weight", {64, 64}, std::vector<float>(64 * 64)));
  std::shared_ptr<const ModelSource> s = std::move(src);
  expect_error_mentioning([&] { LlamaModel m(s); }, "blk.1.attn_k.weight");
  expect_error_mentioning([&] { LlamaModel m(s); }, "<memory>");
}

TEST(LlamaEngine, RopeFreqsOfWrongLengthIsNamed) {
  auto src = make_random_model(small_config(), 19);
  src->add(make_f32_tensor("rope_freqs.weight", {3}, {1.0f, 1.0f, 1.0f}));
  std::shared_ptr<const ModelSource> s = std::move(src);
  expect_error_mentioning([&] { LlamaModel m(s); }, "rope_freqs.weight");
}

TEST(LlamaEngine, WeightOfNonFloatTypeIsNamed) {
  auto src = make_random_model(small_config(), 22);
  TensorInfo info = src->tensor_info("blk.0.attn_v.weight");
  info.type = DType::I32;
  src->add(make_owned_tensor(info, std::vector<uint8_t>(info.n_bytes())));
  std::shared_ptr<const ModelSource> s = std::move(src);
  expect_error_mentioning([&] { LlamaModel m(s); }, "blk.0.attn_v.weight");
}

TEST(LlamaEngine, MissingTensorIsNamed) {
  auto src = make_random_model(small_config(), 15);
  src->remove("blk.0.ffn_up.weight");
  std::shared_ptr<const ModelSource> s = std::move(src);
  expect_error_mentioning([&] { LlamaModel m(s); }, "blk.0.ffn_up.weight");
}

TEST(LlamaEngine, BadTokensAndContextOverflowThrow) {
  EngineOptions o;
  o.n_ctx = 8;
  LlamaModel m(make_random_model(small_config(), 16), o);
  std::vector<float> logits(8 * 50);
  const std::vector<int32_t> bad_hi = {1, 50}, bad_lo = {-1}, nine(9, 1), two = {1, 2};
  EXPECT_THROW(m.eval(bad_hi, 0, logits.data(), true), Error);
  EXPECT_THROW(m.eval(bad_lo, 0, logits.data(), true), Error);
  EXPECT_THROW(m.eval(nine, 0, logits.data(), true), Error);
  EXPECT_THROW(m.eval(two, 7, logits.data(), true), Error);
  EXPECT_THROW(m.eval(two, -1, logits.data(), true), Error);
  EXPECT_NO_THROW(m.eval(two, 6, logits.data(), true));
}

}  // namespace
}  // namespace lowbit
