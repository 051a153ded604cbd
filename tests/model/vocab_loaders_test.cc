#include "model/vocab_loaders.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/tokenizer.h"
#include "support/temp_files.h"
#include "support/tokenizer_fixtures.h"
#include "util/error.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

const std::string kStoriesDir = std::string(LOWBIT_SHARED_DATA) + "/models/llama2c-stories260K";

#define REQUIRE_FILE(path) \
  if (!fs::exists(path)) GTEST_SKIP() << "shared fixture absent: " << (path)

void write_bytes(const fs::path& path, const uint8_t* data, size_t n) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

TEST(VocabLoaders, Tok512BinEqualsModel) {
  REQUIRE_FILE(kStoriesDir + "/tok512.bin");
  const Vocab bin = load_llama2c_vocab(kStoriesDir + "/tok512.bin", 512);
  const Vocab model = load_sentencepiece_vocab(kStoriesDir + "/tok512.model");
  EXPECT_EQ(bin.tokens, model.tokens);
  EXPECT_EQ(bin.scores, model.scores);
  EXPECT_EQ(bin.types, model.types);
  EXPECT_EQ(bin.tokens[403], "\xE2\x96\x81Once");  // tok512.vocab line 404
  EXPECT_EQ(bin.tokens[13], "<0x0A>");
  EXPECT_EQ(bin.types[13], static_cast<int32_t>(TokenType::Byte));
  EXPECT_EQ(bin.types[1], static_cast<int32_t>(TokenType::Control));
  EXPECT_EQ(bin.types[0], static_cast<int32_t>(TokenType::Unknown));
  // Ids from tok512.vocab: <s>, ▁Once, ▁upon, ▁a, ▁time.
  const std::vector<int32_t> want = {1, 403, 407, 261, 378};
  EXPECT_EQ(Tokenizer(bin).encode("Once upon a time", true), want);
  EXPECT_EQ(Tokenizer(model).encode("Once upon a time", true), want);
  // llama2.c's decode: the space after BOS is dropped, byte tokens become their bytes, EOS prints nothing.
  EXPECT_EQ(Tokenizer(bin).decode_llama2c({1, 403, 407, 261, 378, 13, 2}), "Once upon a time\n");
  EXPECT_EQ(Tokenizer(bin).decode({1, 403, 407}), " Once upon");
}

TEST(VocabLoaders, EveryTruncatedSentencePieceModelIsRejected) {
  REQUIRE_FILE(kStoriesDir + "/tok512.model");
  const auto bytes = test::read_file_bytes(kStoriesDir + "/tok512.model");
  const Vocab full = load_sentencepiece_vocab(kStoriesDir + "/tok512.model");
  const fs::path dir = test::fresh_temp_dir("spm-truncated");
  const fs::path cut = dir / "tokenizer.model";
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(cut, bytes.data(), n);
    try {
      const Vocab v = load_sentencepiece_vocab(cut.string());
      // Only a cut at a top-level field boundary after every piece can still be a complete model.
      EXPECT_EQ(v.tokens, full.tokens) << "prefix of " << n << " bytes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(cut.string()), std::string::npos) << e.what();
    }
  }
}

TEST(VocabLoaders, EveryTruncatedLlama2cTokenizerIsRejected) {
  REQUIRE_FILE(kStoriesDir + "/tok512.bin");
  const auto bytes = test::read_file_bytes(kStoriesDir + "/tok512.bin");
  const fs::path cut = test::fresh_temp_dir("llama2c-tok-truncated") / "tok.bin";
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(cut, bytes.data(), n);
    EXPECT_THROW(load_llama2c_vocab(cut.string(), 512), Error) << n;
  }
  write_bytes(cut, bytes.data(), bytes.size());
  EXPECT_THROW(load_llama2c_vocab(cut.string(), 511), Error);  // wrong vocabulary size: bytes left over
}

TEST(VocabLoaders, HfFoldersMatchTheConvertersChoices) {
  const Vocab& gpt2 = test::hf_vocab("gpt2");
  if (gpt2.empty()) GTEST_SKIP() << "shared tokenizer fixtures absent";
  EXPECT_EQ(gpt2.model, "gpt2");
  EXPECT_EQ(gpt2.pre, "gpt-2");
  EXPECT_EQ(gpt2.size(), 50257);
  EXPECT_EQ(gpt2.merges.size(), 50000u);
  EXPECT_EQ(gpt2.eos_id, 50256);
  EXPECT_FALSE(gpt2.add_bos);

  const Vocab& qwen = test::hf_vocab("qwen2.5");
  EXPECT_EQ(qwen.pre, "qwen2");
  EXPECT_EQ(qwen.size(), 151665);
  EXPECT_EQ(qwen.tokens[151644], "<|im_start|>");
  EXPECT_EQ(qwen.types[151644], static_cast<int32_t>(TokenType::Control));
  EXPECT_EQ(qwen.merges.size(), 151387u);

  const Vocab& qwen3 = test::hf_vocab("qwen3");
  EXPECT_EQ(qwen3.size(), 151669);
  EXPECT_EQ(std::vector<std::string>(qwen3.tokens.begin(), qwen3.tokens.begin() + 151643),
            std::vector<std::string>(qwen.tokens.begin(), qwen.tokens.begin() + 151643));
  EXPECT_EQ(qwen3.merges, qwen.merges);

  const Vocab& llama3 = test::hf_vocab("llama-3");
  EXPECT_EQ(llama3.pre, "llama-bpe");
  EXPECT_EQ(llama3.size(), 128256);
  EXPECT_EQ(llama3.bos_id, 128000);
  EXPECT_EQ(llama3.eos_id, 128009);  // <|eot_id|> from the Instruct tokenizer_config.json
  EXPECT_TRUE(llama3.add_bos);

  const Vocab& smol = test::hf_vocab("smollm2");
  EXPECT_EQ(smol.pre, "smollm");
  EXPECT_EQ(smol.size(), 49152);

  const Vocab& llama2 = test::hf_vocab("llama-2");
  EXPECT_EQ(llama2.model, "llama");
  EXPECT_EQ(llama2.size(), 32000);
  EXPECT_TRUE(llama2.add_bos);
  EXPECT_TRUE(llama2.add_space_prefix);
}

TEST(VocabLoaders, BadHfFolders) {
  const fs::path dir = test::fresh_temp_dir("hf-vocab-bad");
  EXPECT_TRUE(load_hf_vocab(dir.string()).empty());  // no tokenizer files at all
  std::ofstream(dir / "tokenizer.json") << "{ not json";
  EXPECT_THROW(load_hf_vocab(dir.string()), Error);
  std::ofstream(dir / "tokenizer.json") << R"({"version": "1.0"})";
  EXPECT_THROW(load_hf_vocab(dir.string()), Error);
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []}})";
  EXPECT_THROW(load_hf_vocab(dir.string()), Error);  // id 1 missing
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [7]}})";
  EXPECT_THROW(load_hf_vocab(dir.string()), Error);
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
  EXPECT_THROW(load_hf_vocab(dir.string()), Error);
  // A small valid one: merges as pairs, an added special token.
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
      "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "ByteLevel"},
      "added_tokens": [{"id": 4, "content": "<|end|>", "special": true}]})";
  const Vocab v = load_hf_vocab(dir.string());
  EXPECT_EQ(v.merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(v.tokens, (std::vector<std::string>{"a", "b", "ab", "[PAD3]", "<|end|>"}));
  EXPECT_EQ(v.types[4], static_cast<int32_t>(TokenType::Control));
  EXPECT_EQ(Tokenizer(v).encode("ab<|end|>", false, true), (std::vector<int32_t>{2, 4}));

  const fs::path tiktoken = test::fresh_temp_dir("hf-vocab-tiktoken");
  std::ofstream(tiktoken / "tokenizer.model") << "IQ== 0\n";
  EXPECT_THROW(load_hf_vocab(tiktoken.string()), Error);
}

}  // namespace
}  // namespace lowbit
