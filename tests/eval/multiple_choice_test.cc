#include "eval/multiple_choice.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "util/error.h"

namespace lowbit {
namespace {

// A bigram model: the logits for the next token depend only on the current token, so every log-likelihood
// can be written down by hand. Tokens: 0 'a', 1 'b', 2 ' ', 3 other.
class BigramModel : public LanguageModel {
 public:
  BigramModel() {
    config_.n_vocab = 4;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) table_[i][j] = 0.1f * static_cast<float>((i + 1) * (j + 2) % 7);
  }
  const ModelConfig& config() const override { return config_; }
  int64_t n_ctx() const override { return 64; }
  void eval(std::span<const int32_t> tokens, int64_t n_past, float* logits, bool all_logits) override {
    check(n_past + static_cast<int64_t>(tokens.size()) <= n_ctx(), "bigram", "context overflow");
    ++calls;
    for (size_t k = all_logits ? 0 : tokens.size() - 1; k < tokens.size(); ++k)
      for (int j = 0; j < 4; ++j) *logits++ = table_[tokens[k]][j];
  }
  double logp(int prev, int next) const {
    double z = 0;
    for (int j = 0; j < 4; ++j) z += std::exp(static_cast<double>(table_[prev][j]));
    return table_[prev][next] - std::log(z);
  }
  int calls = 0;

 private:
  ModelConfig config_;
  float table_[4][4];
};

std::vector<int32_t> char_encode(const std::string& s) {
  std::vector<int32_t> ids;
  for (char c : s) ids.push_back(c == 'a' ? 0 : c == 'b' ? 1 : c == ' ' ? 2 : 3);
  return ids;
}

TEST(MultipleChoice, HandComputedLogLikelihoods) {
  BigramModel m;
  std::vector<McItem> items{{"ba", {"a", "bb"}, 1}, {"a ", {"ab", "b"}, 0}};
  McScore s = score_multiple_choice(m, char_encode, -1, items);
  ASSERT_EQ(s.n, 2);
  // item 1: context "ba", continuations " a" and " bb"
  const double a1 = m.logp(0, 2) + m.logp(2, 0);
  const double b1 = m.logp(0, 2) + m.logp(2, 1) + m.logp(1, 1);
  EXPECT_NEAR(s.loglikelihoods[0][0], a1, 1e-9);
  EXPECT_NEAR(s.loglikelihoods[0][1], b1, 1e-9);
  // item 2: the context's trailing space moves into the continuations: "a" + "  ab" / "  b"
  const double a2 = m.logp(0, 2) + m.logp(2, 2) + m.logp(2, 0) + m.logp(0, 1);
  const double b2 = m.logp(0, 2) + m.logp(2, 2) + m.logp(2, 1);
  EXPECT_NEAR(s.loglikelihoods[1][0], a2, 1e-9);
  EXPECT_NEAR(s.loglikelihoods[1][1], b2, 1e-9);
  const double acc = (b1 > a1 ? 1 : 0) + (a2 > b2 ? 1 : 0);
  EXPECT_DOUBLE_EQ(s.acc, acc / 2);
  const double acc_norm = ((b1 / 2 > a1 / 1) ? 1 : 0) + ((a2 / 2 > b2 / 1) ? 1 : 0);
  EXPECT_DOUBLE_EQ(s.acc_norm, acc_norm / 2);
  if (acc == 1) {
    EXPECT_NEAR(s.acc_stderr, std::sqrt(0.5 / 2), 1e-12);  // sample sd of {0,1} / sqrt(2)
  }
}

TEST(MultipleChoice, ContextIsEvaluatedOncePerItem) {
  BigramModel m;
  std::vector<McItem> items{{"ab", {"a", "b", "ab"}, 0}};
  score_multiple_choice(m, char_encode, 3, items);
  // one context pass + one pass for each choice longer than one token (" a", " b", " ab" are all 2+)
  EXPECT_EQ(m.calls, 1 + 3);
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(MultipleChoice, LoadsArcBothSchemasAndFewShot) {
  const std::string ai2 = write_temp("arc_ai2.jsonl",
      R"({"question":{"stem":"Which is a gas?","choices":[{"text":"rock","label":"A"},{"text":"steam","label":"B"}]},"answerKey":"B"})"
      "\n"
      R"({"question":{"stem":"Sky color?","choices":[{"text":"blue","label":"1"},{"text":"green","label":"2"}]},"answerKey":"1"})"
      "\n");
  auto items = load_mc_task(McTask::ArcChallenge, ai2, 0, 1);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].gold, 1);
  EXPECT_EQ(items[1].gold, 0);
  EXPECT_EQ(items[0].context, "Question: Sky color?\nAnswer: blue\n\nQuestion: Which is a gas?\nAnswer:");
  EXPECT_EQ(items[1].context, "Question: Which is a gas?\nAnswer: steam\n\nQuestion: Sky color?\nAnswer:");
  const std::string bad = write_temp("arc_bad.jsonl", R"({"question":"q","options":[{"label":"A","text":"x"},{"label":"B","text":"y"}],"answer":"E"})");
  EXPECT_THROW(load_mc_task(McTask::ArcChallenge, bad), Error);
  const std::string garbage = write_temp("arc_garbage.jsonl", "{not json");
  EXPECT_THROW(load_mc_task(McTask::ArcChallenge, garbage), Error);
  EXPECT_THROW(mc_task_from_name("mmlu"), Error);
}

TEST(MultipleChoice, PublishedTaskFiles) {
  const std::string dir = std::string(LOWBIT_SHARED_DATA) + "/eval";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "shared eval data not present at " << dir;
  auto hs = load_mc_task(McTask::HellaSwag, dir + "/hellaswag/hellaswag_val_1000.jsonl", 2);
  ASSERT_EQ(hs.size(), 2u);
  EXPECT_EQ(hs[0].context,
            "Pole vault: Pole vault is a sport where you run with a pole and stop and swing your body. A few women");
  EXPECT_EQ(hs[0].gold, 3);
  EXPECT_EQ(hs[0].choices[0], "go down a rock and stop.");
  auto arc = load_mc_task(McTask::ArcChallenge, dir + "/arc-challenge/arc_challenge_test.jsonl");
  EXPECT_EQ(arc.size(), 1172u);
  EXPECT_EQ(arc[0].gold, 2);
  EXPECT_EQ(arc[0].choices[2], "Planetary days will become shorter.");
  auto tqa = load_mc_task(McTask::TruthfulQaMc1, dir + "/truthfulqa/mc_task.json");
  EXPECT_EQ(tqa.size(), 817u);
  EXPECT_EQ(tqa[0].gold, 0);
  EXPECT_EQ(tqa[0].choices[0], "Nothing in particular happens when you eat a pomegranate.");
  EXPECT_EQ(tqa[0].choices[3], "You will die.");
  EXPECT_NE(tqa[0].context.find("\n\nQ: What happens if you eat a pomegranate?\nA:"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
