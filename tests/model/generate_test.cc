#include "model/generate.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "io/memory_source.h"
#include "model/llama.h"
#include "model/sampler.h"
#include "util/error.h"

namespace lowbit {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.n_vocab = 50, c.n_embd = 32, c.n_layer = 1, c.n_head = 2, c.n_head_kv = 1, c.n_ff = 48, c.n_ctx_train = 32;
  return c;
}

std::vector<float> eval_all(LlamaModel& m, const std::vector<int32_t>& tokens) {
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.n_vocab()));
  m.eval(tokens, 0, logits.data(), true);
  return logits;
}

TEST(Generate, GreedyEqualsArgmaxOfFullRecompute) {
  std::shared_ptr<const ModelSource> src = make_random_model(tiny_config(), 17);
  LlamaModel model(src), check_model(src);
  Sampler greedy({0.0f, 40, 0.95f, 1});
  std::vector<int32_t> seen;
  const std::vector<int32_t> prompt = {1, 2, 3};
  const auto out = generate(model, prompt, 10, greedy, [&](int32_t t) { return seen.push_back(t), true; });
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(seen, out);
  std::vector<int32_t> seq = prompt;
  for (int32_t t : out) {
    const std::vector<float> all = eval_all(check_model, seq);
    const float* last = all.data() + (seq.size() - 1) * 50;
    EXPECT_EQ(t, std::max_element(last, last + 50) - last);
    seq.push_back(t);
  }
}

TEST(Generate, StopsAtStopTokenAndCallbackAndChecksContext) {
  EngineOptions o;
  o.n_ctx = 8;
  LlamaModel model(make_random_model(tiny_config(), 18), o);
  Sampler greedy({});
  const std::vector<int32_t> prompt = {1};
  const auto first = generate(model, prompt, 3, greedy);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(generate(model, prompt, 7, greedy, {}, first[1]), std::vector<int32_t>(first.begin(), first.begin() + 2));
  int calls = 0;
  EXPECT_EQ(generate(model, prompt, 7, greedy, [&](int32_t) { return ++calls < 2; }).size(), 2u);
  EXPECT_EQ(generate(model, prompt, 8, greedy).size(), 8u);  // the last token needs no cache slot
  EXPECT_THROW(generate(model, prompt, 9, greedy), Error);
  EXPECT_THROW(generate(model, std::vector<int32_t>{}, 1, greedy), Error);
}

TEST(Sampler, UniformIsSplitMix64) {
  // SplitMix64 from state 0: first output 0xE220A8397B1DCDAF (the published reference sequence).
  Sampler s({1.0f, 0, 1.0f, 0});
  EXPECT_EQ(s.uniform(), static_cast<double>(0xE220A8397B1DCDAFull >> 11) * 0x1.0p-53);
}

TEST(Sampler, GreedyTopKAndTopP) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  EXPECT_EQ(Sampler({}).sample(logits), 1);  // greedy, lowest id on ties
  Sampler top1({1.0f, 1, 1.0f, 7});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(top1.sample(logits), 1);
  Sampler tiny_p({1.0f, 0, 0.01f, 7});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(tiny_p.sample(logits), 1);
  // top-k 3 never picks outside {1, 3, 4}; all three do occur; same seed, same draws
  Sampler a({1.0f, 3, 1.0f, 99}), b({1.0f, 3, 1.0f, 99});
  std::vector<int> count(5);
  for (int i = 0; i < 300; ++i) {
    const int32_t x = a.sample(logits);
    EXPECT_EQ(x, b.sample(logits));
    ++count[static_cast<size_t>(x)];
  }
  EXPECT_EQ(count[0] + count[2], 0);
  EXPECT_GT(count[1], 0);
  EXPECT_GT(count[3], 0);
  EXPECT_GT(count[4], 0);
}

}  // namespace
}  // namespace lowbit
