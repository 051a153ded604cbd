// lowbit bench's figures: each generation repetition against the bandwidth measured just before it.
#include "eval/bench.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "util/error.h"

namespace lowbit {
namespace {

TEST(Bench, RooflineFractionPairsEachRepetitionWithItsProbe) {
  BenchTest tg{"tg32", 32, {40.0, 50.0, 30.0}, {40e9, 50e9, 20e9}};
  // 1e9 bytes per token: bounds 40, 50 and 20 t/s, so the repetitions reached 1.0, 1.0 and 1.5 of theirs. Against
  // the mean bandwidth (36.7 GB/s) the mean speed (40 t/s) would read 1.09: the pairing is what is tested.
  const RooflineFraction f = roofline_fraction(tg, 1e9);
  EXPECT_DOUBLE_EQ(f.median, 1.0);
  EXPECT_DOUBLE_EQ(f.min, 1.0);
  EXPECT_DOUBLE_EQ(f.max, 1.5);
  EXPECT_DOUBLE_EQ(f.bandwidth_median, 40e9);
  EXPECT_EQ(f.round_trip_median, 0.0);  // one thread: none measured

  tg.round_trip_ns = {600.0, 150.0, 450.0};
  EXPECT_DOUBLE_EQ(roofline_fraction(tg, 1e9).round_trip_median, 450.0);

  tg.tokens_per_s = {10.0, 30.0};  // an even count: the median is the mean of the middle two
  tg.bandwidth = {20e9, 20e9};
  const RooflineFraction even = roofline_fraction(tg, 1e9);
  EXPECT_DOUBLE_EQ(even.median, 1.0);
  EXPECT_DOUBLE_EQ(even.min, 0.5);
  EXPECT_DOUBLE_EQ(even.max, 1.5);
}

TEST(Bench, RooflineFractionWithoutProbesIsZero) {
  const BenchTest tg{"tg8", 8, {40.0, 50.0}, {}};
  const RooflineFraction f = roofline_fraction(tg, 1e9);
  EXPECT_EQ(f.median, 0.0);
  EXPECT_EQ(f.bandwidth_median, 0.0);
}

// A model that only records where each call evaluates: (first position, tokens).
class RecordingModel : public LanguageModel {
 public:
  RecordingModel() { config_.n_vocab = 50; }
  const ModelConfig& config() const override { return config_; }
  int64_t n_ctx() const override { return 64; }
  void eval(std::span<const int32_t> tokens, int64_t n_past, float*, bool) override {
    calls.emplace_back(n_past, static_cast<int64_t>(tokens.size()));
  }
  std::vector<std::pair<int64_t, int64_t>> calls;

 private:
  ModelConfig config_;
};

// At a depth, the context before it is filled once (after the warm-up at position 0), then each test runs at the
// positions after it: a prompt of 3 at 10, generation at 10 and 11, every repetition (and the uncounted first).
TEST(Bench, AtADepthTheTestsRunAfterTheFilledContext) {
  RecordingModel m;
  const std::vector<BenchTest> tests = run_bench(m, 3, 2, 2, nullptr, 10);
  ASSERT_EQ(tests.size(), 2u);
  EXPECT_EQ(tests[0].name, "pp3 @ d10");
  EXPECT_EQ(tests[1].name, "tg2 @ d10");
  size_t first = 0;  // past the warm-up's single tokens at 0
  while (first < m.calls.size() && m.calls[first] == std::pair<int64_t, int64_t>{0, 1}) ++first;
  const std::vector<std::pair<int64_t, int64_t>> want = {{0, 10}, {10, 3}, {10, 3}, {10, 3}, {10, 1}, {11, 1},
                                                         {10, 1}, {11, 1}, {10, 1}, {11, 1}};
  const std::vector<std::pair<int64_t, int64_t>> got(m.calls.begin() + static_cast<std::ptrdiff_t>(first), m.calls.end());
  EXPECT_EQ(got, want);
  // Without a depth, the names are llama-bench's plain ones; past the context or below zero, an error.
  EXPECT_EQ(run_bench(m, 0, 2, 1).front().name, "tg2");
  EXPECT_THROW(run_bench(m, 30, 30, 1, nullptr, 10), Error);
  EXPECT_THROW(run_bench(m, 1, 1, 1, nullptr, -1), Error);
}

// Models taking turns: after every model's warm-up and context, repetition r of each model's tests (its prompt, then
// its generation), model by model, the order reversed every other repetition; each model's repetitions counted as
// run_bench counts them.
TEST(Bench, ModelsTakeTurnsRepetitionByRepetition) {
  struct Turns : RecordingModel {
    Turns(std::vector<int>* log, int id) : log_(log), id_(id) {}
    void eval(std::span<const int32_t> tokens, int64_t n_past, float* logits, bool all) override {
      RecordingModel::eval(tokens, n_past, logits, all);
      if (tokens.size() == 4) log_->push_back(id_);  // the prompt of each repetition
    }
    std::vector<int>* log_;
    int id_;
  };
  std::vector<int> log;
  Turns a(&log, 0), b(&log, 1), c(&log, 2);
  LanguageModel* models[] = {&a, &b, &c};
  const auto tests = run_bench_in_turn(models, 4, 2, 3, 5);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0}));  // repetitions 0 (uncounted) to 3
  ASSERT_EQ(tests.size(), 3u);
  for (const auto& model_tests : tests) {
    ASSERT_EQ(model_tests.size(), 2u);
    EXPECT_EQ(model_tests[0].name, "pp4 @ d5");
    EXPECT_EQ(model_tests[1].name, "tg2 @ d5");
    EXPECT_EQ(model_tests[0].tokens_per_s.size(), 3u);
    EXPECT_EQ(model_tests[1].tokens_per_s.size(), 3u);
  }
  // Each model's own calls after its warm-up: its context once, then a prompt and two tokens each repetition.
  size_t first = 0;
  while (first < a.calls.size() && a.calls[first] == std::pair<int64_t, int64_t>{0, 1}) ++first;
  const std::vector<std::pair<int64_t, int64_t>> want = {{0, 5}, {5, 4}, {5, 1}, {6, 1}, {5, 4}, {5, 1}, {6, 1},
                                                         {5, 4}, {5, 1}, {6, 1}, {5, 4}, {5, 1}, {6, 1}};
  const std::vector<std::pair<int64_t, int64_t>> got(a.calls.begin() + static_cast<std::ptrdiff_t>(first), a.calls.end());
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace lowbit
