#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "io/gguf_source.h"
#include "model/vocab_loaders.h"
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
}  // namespace lowbit
