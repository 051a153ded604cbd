#include "model/llama.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "algo/gguf_quantize.h"
#include "io/gguf_source.h"
#include "io/model_source.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kModels = std::string(LOWBIT_SOURCE_DIR) + "/models/";
const std::string kShared = std::string(LOWBIT_SHARED_DATA) + "/models/lowbit-tiny-gutenberg/";

std::string greedy(LanguageModel& model, const Tokenizer& tok, const std::string& prompt, int n) {
  std::vector<int32_t> ids = tok.encode(prompt, true);
  std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
  model.eval(ids, 0, logits.data(), false);
  Sampler greedy_sampler({});
  std::string out;
  int64_t pos = static_cast<int64_t>(ids.size());
  for (int i = 0; i < n; ++i) {
    const int32_t next = greedy_sampler.sample(logits);
    out += tok.token_to_piece(next);
    model.eval(std::span<const int32_t>(&next, 1), pos++, logits.data(), false);
  }
  return out;
}

// karpathy/llama2.c's run.c, greedy, 200 steps from BOS: its known output.
TEST(LlamaModel, Stories260KReproducesLlama2cGreedyOutput) {
  auto src = std::shared_ptr<const ModelSource>(open_model(kModels + "stories260K/stories260K.bin"));
  Tokenizer tok(src->vocab());
  LlamaModel model(src, {0, 2});
  std::string text = greedy(model, tok, "", 200);
  ASSERT_FALSE(text.empty());
  if (text[0] == ' ') text.erase(0, 1);  // SentencePiece drops the space after BOS
  std::string expected = read_text_file(kModels + "stories260K/stories260K.greedy_t0_n200.expected.txt");
  EXPECT_EQ(text, expected);
}

std::vector<float> prompt_logits(const std::string& path, const std::string& tokenizer = "") {
  auto src = std::shared_ptr<const ModelSource>(open_model(path, {tokenizer}));
  Tokenizer tok(src->vocab());
  LlamaModel model(src, {32, 2});
  std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
  model.eval(tok.encode("It was a dark night", true), 0, logits.data(), false);
  return logits;
}

// llama.cpp's llama-simple on the same weights (shared/data/.../llama.cpp-reference/README.md).
TEST(LlamaModel, TinyGutenbergGreedyMatchesLlamaCpp) {
  const std::string expected =
      " was a very good-natured man, and the man who had been\nin a very good sense, and he had been a very "
      "good-natured man.\nHe was a very good-natured man, and he was";
  auto src = std::shared_ptr<const ModelSource>(open_model(kModels + "tiny-gutenberg"));
  Tokenizer tok(src->vocab());
  LlamaModel model(src, {0, 2});
  EXPECT_EQ(greedy(model, tok, "The old man", 48), expected);
}

// The same weights in the same type give the same logits, whichever file format holds them.
TEST(LlamaModel, SameLogitsFromGgufHfAndLlama2c) {
  // HF folder (F16) vs the GGUF F16 lowbit converts it to.
  const std::string f16 = testing::TempDir() + "/tiny-f16.gguf";
  GgufQuantizeOptions o;
  o.converter_layout = true;
  o.mix.ftype = FileType::F16;
  quantize_to_gguf(std::shared_ptr<const ModelSource>(open_model(kModels + "tiny-gutenberg")), f16, o);
  EXPECT_EQ(prompt_logits(kModels + "tiny-gutenberg"), prompt_logits(f16));
  // llama2.c checkpoint (F32) vs its GGUF F32 conversion.
  const std::string f32 = testing::TempDir() + "/stories-f32.gguf";
  o.mix.ftype = FileType::ALL_F32;
  quantize_to_gguf(std::shared_ptr<const ModelSource>(open_model(kModels + "stories260K/stories260K.bin")), f32, o);
  EXPECT_EQ(prompt_logits(kModels + "stories260K/stories260K.bin"), prompt_logits(f32));
}

TEST(LlamaModel, ThreadCountAndBatchingDoNotChangeLogits) {
  auto src = std::shared_ptr<const ModelSource>(open_model(kModels + "tiny-gutenberg"));
  Tokenizer tok(src->vocab());
  const auto ids = tok.encode("In the beginning was the word, and the word was", true);
  const int64_t nv = src->config().n_vocab;
  std::vector<float> a(ids.size() * static_cast<size_t>(nv)), b(a.size()), c(static_cast<size_t>(nv));
  LlamaModel m1(src, {64, 1}), m2(src, {64, 2});
  m1.eval(ids, 0, a.data(), true);
  m2.eval(ids, 0, b.data(), true);
  EXPECT_EQ(a, b);  // bit-identical for 1 and 2 threads
  // One token at a time gives the same logits as the batch (up to float reassociation in attention).
  for (size_t t = 0; t < ids.size(); ++t) {
    m2.eval(std::span<const int32_t>(&ids[t], 1), static_cast<int64_t>(t), c.data(), false);
    for (int64_t j = 0; j < nv; j += 97) ASSERT_NEAR(c[static_cast<size_t>(j)], a[t * static_cast<size_t>(nv) + static_cast<size_t>(j)], 1e-4);
  }
}

TEST(LlamaModel, BadInputsAreErrors) {
  auto src = std::shared_ptr<const ModelSource>(open_model(kModels + "stories260K/stories260K.bin"));
  LlamaModel model(src, {16, 1});
  std::vector<float> logits(512 * 20);
  const std::vector<int32_t> bad = {1, 600};
  EXPECT_THROW(model.eval(bad, 0, logits.data(), false), Error);
  const std::vector<int32_t> many(17, 5);
  EXPECT_THROW(model.eval(many, 0, logits.data(), true), Error);  // past the context
  EXPECT_THROW(model.eval(std::vector<int32_t>{1}, 16, logits.data(), false), Error);
}

}  // namespace
}  // namespace lowbit
