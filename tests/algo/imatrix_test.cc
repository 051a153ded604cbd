#include "algo/imatrix.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kRef = std::string(LOWBIT_SHARED_DATA) + "/models/lowbit-tiny-gutenberg/llama.cpp-reference/";

TEST(Imatrix, CollectsLlamaImatrixStatistics) {
  if (!std::filesystem::exists(kRef)) GTEST_SKIP() << "llama.cpp reference files not present";
  // llama-imatrix -m model-f32.gguf -f tinyshakespeare/input.txt -c 256 --chunks 20 (reference README).
  std::shared_ptr<const ModelSource> src = open_model(kRef + "model-f32.gguf");
  Tokenizer tok(src->vocab());
  LlamaModel model(src, {256, 2});
  ImatrixCollector collector;
  const auto tokens = tok.encode(read_text_file(std::string(LOWBIT_SHARED_DATA) + "/corpus/tinyshakespeare/input.txt"), true);
  EXPECT_EQ(collect_imatrix(model, tokens, 256, 20, tok.vocab().bos_id, collector), 20);
  const Imatrix ours = collector.imatrix();
  const Imatrix ref = read_imatrix(kRef + "imatrix.dat");
  ASSERT_EQ(ours.entries.size(), ref.entries.size());
  EXPECT_EQ(ours.chunks, ref.chunks);
  for (const auto& [name, e] : ref.entries) {
    ASSERT_TRUE(ours.entries.count(name)) << name;
    EXPECT_EQ(ours.entries.at(name).ncall, e.ncall) << name;
    const auto a = *ours.importance(name), b = *ref.importance(name);
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t j = 0; j < a.size(); ++j) ASSERT_NEAR(a[j], b[j], 1e-3 * std::fabs(b[j]) + 1e-6) << name << " " << j;
  }
}

TEST(Imatrix, TooFewTokensIsAnError) {
  std::shared_ptr<const ModelSource> src = open_model(std::string(LOWBIT_SOURCE_DIR) + "/models/stories260K/stories260K.bin");
  LlamaModel model(src, {64, 1});
  ImatrixCollector collector;
  EXPECT_THROW(collect_imatrix(model, std::vector<int32_t>(63, 5), 64, -1, 1, collector), Error);
}

TEST(Imatrix, FileFormatsRoundTripAndMerge) {
  Imatrix m;
  m.entries["blk.0.attn_q.weight"] = {{2.0f, 4.0f, 8.0f}, 4.0f, 2};
  m.entries["blk.0.ffn_down.weight"] = {{1.0f, 3.0f}, 2.0f, 2};
  m.datasets = {"calib.txt"};
  m.chunks = 2;
  m.chunk_size = 2;
  const std::string dir = testing::TempDir();
  for (auto f : {ImatrixFormat::Dat, ImatrixFormat::Gguf}) {
    const std::string path = dir + (f == ImatrixFormat::Dat ? "/m.dat" : "/m.gguf");
    write_imatrix(path, m, f);
    const Imatrix back = read_imatrix(path);
    EXPECT_EQ(back.entries.size(), 2u);
    EXPECT_EQ(*back.importance("blk.0.attn_q.weight"), (std::vector<float>{0.5f, 1.0f, 2.0f}));
    EXPECT_EQ(back.chunks, 2);
    EXPECT_EQ(back.datasets.back(), "calib.txt");
  }
  Imatrix sum = read_imatrix(dir + "/m.gguf");
  sum.merge(read_imatrix(dir + "/m.gguf"), "m.gguf");
  EXPECT_EQ(*sum.importance("blk.0.ffn_down.weight"), (std::vector<float>{0.5f, 1.5f}));  // means are unchanged
  Imatrix bad;
  bad.entries["blk.0.attn_q.weight"] = {{1.0f}, 1.0f, 1};
  EXPECT_THROW(sum.merge(bad, "bad.dat"), Error);
}

TEST(Imatrix, HostileDatFiles) {
  if (!std::filesystem::exists(kRef)) GTEST_SKIP() << "llama.cpp reference files not present";
  const std::string good = read_text_file(kRef + "imatrix.dat");
  for (size_t cut = 0; cut + 1 < good.size(); cut += 37) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(good.data()), cut);
    EXPECT_THROW(parse_imatrix_dat(bytes, "cut.dat"), Error) << cut;
  }
  std::string forged = good;
  const int32_t huge = 1 << 30;
  std::memcpy(forged.data(), &huge, 4);
  EXPECT_THROW(parse_imatrix_dat({reinterpret_cast<const uint8_t*>(forged.data()), forged.size()}, "forged.dat"), Error);
}

}  // namespace
}  // namespace lowbit
