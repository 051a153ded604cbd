#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/gguf_source.h"
#include "model/pretokenize.h"
#include "model/vocab_loaders.h"
#include "support/temp_files.h"
#include "support/tokenizer_fixtures.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kStories = std::string(LOWBIT_SOURCE_DIR) + "/models/stories260K/";
const std::string kVocabDir = std::string(LOWBIT_SHARED_DATA) + "/tokenizers/llama.cpp-vocab/";

// llama.cpp's tokenizer test pairs: .inp strings separated by "\n__ggml_vocab_test__\n", .out one id list per line.
void check_vocab_pairs(const std::string& gguf) {
  const std::string path = kVocabDir + gguf;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared tokenizer data not present at " << path;
  const GgufFile g = open_gguf(path);
  Tokenizer tok(gguf_vocab(g.metadata, path));
  const std::string inp = read_text_file(path + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> tests;
  for (size_t a = 0, b; (b = inp.find(sep, a)) != std::string::npos; a = b + sep.size()) tests.push_back(inp.substr(a, b - a));
  std::istringstream out(read_text_file(path + ".out"));
  std::string line;
  size_t i = 0;
  for (; std::getline(out, line); ++i) {
    ASSERT_LT(i, tests.size());
    std::vector<int32_t> want;
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) want.push_back(id);
    EXPECT_EQ(tok.encode(tests[i], false), want) << gguf << " test " << i << ": '" << tests[i] << "'";
  }
  EXPECT_EQ(i, tests.size());
}

TEST(Tokenizer, LlamaSpmMatchesLlamaCpp) { check_vocab_pairs("ggml-vocab-llama-spm.gguf"); }
TEST(Tokenizer, Phi3MatchesLlamaCpp) { check_vocab_pairs("ggml-vocab-phi-3.gguf"); }

TEST(Tokenizer, Llama2cBinAndSentencePieceModelAgree) {
  const Vocab bin = load_llama2c_vocab(kStories + "tok512.bin", 512);
  const Vocab model = load_sentencepiece_vocab(kStories + "tok512.model");
  ASSERT_EQ(bin.tokens, model.tokens);
  ASSERT_EQ(bin.scores, model.scores);
  ASSERT_EQ(bin.types, model.types);
  Tokenizer a(bin), b(model);
  for (const char* text : {"Once upon a time", "Lily's mom said, \"Hi!\"\nThe end.", "  two  spaces", "ünïcödé ✓"}) {
    const auto ids = a.encode(text, true);
    EXPECT_EQ(ids, b.encode(text, true)) << text;
    EXPECT_EQ(ids.front(), 1);  // BOS
    EXPECT_EQ(a.decode(ids), std::string(" ") + text);  // SentencePiece's dummy prefix
  }
}

TEST(Tokenizer, BadFilesAreErrors) {
  const std::string bin = read_text_file(kStories + "tok512.bin");
  const std::string dir = testing::TempDir();
  for (size_t cut : {size_t{0}, size_t{3}, size_t{100}, bin.size() - 1}) {
    write_file_atomic(dir + "/cut.bin", bin.substr(0, cut));
    EXPECT_THROW(load_llama2c_vocab(dir + "/cut.bin", 512), Error) << cut;
  }
  EXPECT_THROW(load_llama2c_vocab(kStories + "tok512.bin", 600), Error);  // wrong vocabulary size
  const std::string model = read_text_file(kStories + "tok512.model");
  for (size_t cut = 1; cut < model.size(); cut += 97) {
    write_file_atomic(dir + "/cut.model", model.substr(0, cut));
    try {
      load_sentencepiece_vocab(dir + "/cut.model");  // a cut on a field boundary can still parse; no crash either way
    } catch (const Error&) {
    }
  }
  write_file_atomic(dir + "/garbage.model", std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11));
  EXPECT_THROW(load_sentencepiece_vocab(dir + "/garbage.model"), Error);
  EXPECT_THROW(Tokenizer(Vocab{}), Error);
}

}  // namespace

// HF tokenizer folders, byte-level BPE and the remaining llama.cpp pairs.
namespace {

namespace fs = std::filesystem;
using test::hf_vocab;
using test::llama_cpp_pairs;

#define REQUIRE_VOCAB(name)                                                             \
  const Vocab& vocab = hf_vocab(name);                                                  \
  if (vocab.empty()) GTEST_SKIP() << "shared tokenizer fixture absent: " << (name)

nlohmann::json expected(const std::string& file) {
  const std::string path = test::shared_tokenizers_dir() + "/hf/expected/" + file;
  return nlohmann::json::parse(read_text_file(path));
}

void expect_swift_transformers_case(const Tokenizer& tok, const std::string& file, bool add_special) {
  const auto j = expected(file);
  const std::string text = j["text"].get<std::string>();
  const auto want = j["token_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(tok.encode(text, add_special), want);
  EXPECT_EQ(tok.decode(want, /*special=*/true), j["decoded_text"].get<std::string>());  // shows BOS text
}

void expect_pairs(const Tokenizer& tok, const std::string& pairs_name) {
  const auto pairs = llama_cpp_pairs(pairs_name);
  ASSERT_FALSE(pairs.empty()) << pairs_name;
  for (const auto& [text, ids] : pairs) EXPECT_EQ(tok.encode(text, false), ids) << pairs_name << ": '" << text << "'";
}

TEST(TokenizerHf, Gpt2MatchesTransformers) {
  REQUIRE_VOCAB("gpt2");
  const Tokenizer tok(vocab);
  expect_swift_transformers_case(tok, "gpt2_encoded_tokens.json", false);
  expect_pairs(tok, "gpt-2");
}

TEST(TokenizerHf, Llama2MatchesTransformers) {
  REQUIRE_VOCAB("llama-2");
  const Tokenizer tok(vocab);
  EXPECT_EQ(vocab.model, "llama");
  const auto j = expected("llama_encoded.json");
  EXPECT_EQ(tok.encode(j["text"].get<std::string>(), true), j["token_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(tok.decode_llama2c(j["token_ids"].get<std::vector<int32_t>>()), j["text"].get<std::string>());
  expect_pairs(tok, "llama-spm");
}

// The same tokenizer from tokenizer.json alone (no tokenizer.model): scores derived from the merges.
TEST(TokenizerHf, Llama2FromTokenizerJsonOnly) {
  const fs::path src = fs::path(test::shared_tokenizers_dir()) / "hf" / "llama-2";
  if (!fs::exists(src)) GTEST_SKIP() << "shared fixture absent: " << src;
  const fs::path dir = test::fresh_temp_dir("llama2-json-only");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(src / f, dir / f);
  const Vocab v = load_hf_vocab(dir.string());
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.tokens, hf_vocab("llama-2").tokens);
  EXPECT_EQ(v.types, hf_vocab("llama-2").types);
  const Tokenizer tok(v);
  const auto j = expected("llama_encoded.json");
  EXPECT_EQ(tok.encode(j["text"].get<std::string>(), true), j["token_ids"].get<std::vector<int32_t>>());
  expect_pairs(tok, "llama-spm");
}

TEST(TokenizerHf, Llama3MatchesTransformers) {
  REQUIRE_VOCAB("llama-3");
  const Tokenizer tok(vocab);
  EXPECT_EQ(vocab.pre, "llama-bpe");
  expect_swift_transformers_case(tok, "llama_3.2_encoded.json", true);
  expect_pairs(tok, "llama-bpe");
}

TEST(TokenizerHf, Qwen25MatchesLlamaCpp) {
  REQUIRE_VOCAB("qwen2.5");
  EXPECT_EQ(vocab.pre, "qwen2");
  expect_pairs(Tokenizer(vocab), "qwen2");
}

TEST(TokenizerHf, Qwen3MatchesLlamaCpp) {
  REQUIRE_VOCAB("qwen3");
  EXPECT_EQ(vocab.pre, "qwen2");
  const Tokenizer tok(vocab);
  expect_pairs(tok, "qwen2");
  // Control tokens only when parse_special; the text around them is tokenized on its own.
  const auto with = tok.encode("<|im_start|>user\nHi<|im_end|>", false, true);
  ASSERT_GE(with.size(), 3u);
  EXPECT_EQ(with.front(), 151644);
  EXPECT_EQ(with.back(), 151645);
  EXPECT_EQ(tok.decode(with, true), "<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(tok.decode(with), "user\nHi");
  const auto without = tok.encode("<|im_start|>", false, false);
  EXPECT_GT(without.size(), 1u);
  EXPECT_EQ(tok.decode(without), "<|im_start|>");
}

TEST(TokenizerHf, SmolLm2SplitsDigits) {
  REQUIRE_VOCAB("smollm2");
  EXPECT_EQ(vocab.pre, "smollm");
  const Tokenizer tok(vocab);
  std::vector<std::string> pieces;
  for (int32_t id : tok.encode("year 2024<|im_end|>", false, true)) pieces.push_back(tok.token_to_piece(id, true));
  EXPECT_EQ(pieces, (std::vector<std::string>{"year", " ", "2", "0", "2", "4", "<|im_end|>"}));
}

TEST(Pretokenize, SplitsLikeTheRegexes) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(pretokenize("Hello world's  12345 !!\n\n x", PreSplit::Gpt2),
            (V{"Hello", " world", "'s", " ", " 12345", " !!", "\n\n", " x"}));
  EXPECT_EQ(pretokenize("Hello WORLD'S  12345 !!\n\n x", PreSplit::Llama3),
            (V{"Hello", " WORLD", "'S", " ", " ", "123", "45", " !!\n\n", " x"}));
  EXPECT_EQ(pretokenize("a 123", PreSplit::Qwen2), (V{"a", " ", "1", "2", "3"}));
  EXPECT_EQ(pretokenize("a  12", PreSplit::DigitsGpt2), (V{"a", "  ", "1", "2"}));
  EXPECT_EQ(pretokenize("\tword\n  \nx", PreSplit::Llama3), (V{"\tword", "\n  \n", "x"}));
  EXPECT_EQ(pretokenize("\xff\xfe" "ab", PreSplit::Gpt2), (V{"\xff\xfe", "ab"}));
  // llama.cpp's "default" chain: punctuation runs, GPT-2, \p{N}+, then [0-9]{3}.
  EXPECT_EQ(pretokenize("a+b 1234", PreSplit::Default), (V{"a", "+", "b", " ", "123", "4"}));
  EXPECT_EQ(pretokenize("x\n\nfoo(1)", PreSplit::DeepseekCoder), (V{"x", "\n", "\n", "foo", "(", "1", ")"}));
}

TEST(Tokenizer, InvalidUtf8DoesNotBreak) {
  const std::string bad = "ok \xff\xfe end\xe2\x96";
  for (const char* name : {"gpt2", "llama-2"}) {
    const Vocab& vocab = hf_vocab(name);
    if (vocab.empty()) continue;
    const Tokenizer tok(vocab);
    EXPECT_EQ(tok.decode_llama2c(tok.encode(bad, true)), bad) << name;  // byte-level / byte fallback keep every byte
    // A lead byte swallows the next bytes as one "character" (llama.cpp does the same); only check it is sane.
    for (int32_t id : tok.encode("a\xc3 b\xf0", false)) EXPECT_TRUE(id >= 0 && id < vocab.size()) << name;
  }
}

// One 200k-character word: the merge queue keeps this fast (a pairwise rescan per merge would take minutes).
TEST(Tokenizer, LongWordRoundTrips) {
  const std::string text(200000, 'a');
  for (const char* name : {"gpt2", "llama-2"}) {
    const Vocab& vocab = hf_vocab(name);
    if (vocab.empty()) continue;
    const Tokenizer tok(vocab);
    const auto ids = tok.encode(text, true);
    EXPECT_LT(ids.size(), text.size() / 2) << name;
    EXPECT_EQ(tok.decode_llama2c(ids), text) << name;
  }
}

TEST(Tokenizer, RefusesUnknownModels) {
  Vocab v;
  EXPECT_THROW(Tokenizer{v}, Error);
  v.tokens = {"a"};
  v.model = "bert";
  EXPECT_THROW(Tokenizer{v}, Error);
  v.model = "gpt2";
  v.pre = "no-such-pre";
  EXPECT_THROW(Tokenizer{v}, Error);
}

// llama.cpp's own vocab-only GGUF files and their test pairs (through the GGUF reader).
TEST(TokenizerGguf, LlamaCppPairs) {
  const fs::path dir = fs::path(test::shared_tokenizers_dir()) / "llama.cpp-vocab";
  if (!fs::exists(dir)) GTEST_SKIP() << "shared fixture absent: " << dir;
  std::set<std::string> checked, skipped;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    std::string name = e.path().stem().string().substr(std::string("ggml-vocab-").size());
    const auto pairs = llama_cpp_pairs(name);
    if (pairs.empty()) continue;
    const Vocab vocab = open_gguf_model(e.path().string())->vocab();
    bool supported = vocab.model == "llama" || vocab.model == "gpt2";
    try {
      if (supported && vocab.model == "gpt2") pre_split_for(vocab.pre);
    } catch (const Error&) {
      supported = false;  // pre-tokenizer not implemented
    }
    if (!supported) {
      skipped.insert(name);
      continue;
    }
    const Tokenizer tok(vocab);
    for (const auto& [text, ids] : pairs) EXPECT_EQ(tok.encode(text, false), ids) << name << ": '" << text << "'";
    checked.insert(name);
  }
  EXPECT_EQ(skipped, (std::set<std::string>{"bert-bge"}));  // WordPiece
  for (const char* must :
       {"gpt-2", "llama-spm", "phi-3", "mpt", "refact", "starcoder", "falcon", "deepseek-coder", "deepseek-llm"})
    EXPECT_TRUE(checked.count(must)) << must;
}

}  // namespace
}  // namespace lowbit
