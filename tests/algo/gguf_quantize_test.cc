#include "algo/gguf_quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/gguf.h"
#include "io/memory_source.h"
#include "io/model_source.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kRef = std::string(LOWBIT_SHARED_DATA) + "/models/lowbit-tiny-gutenberg/llama.cpp-reference/";
const std::string kModels = std::string(LOWBIT_SOURCE_DIR) + "/models/";

std::shared_ptr<const ModelSource> open(const std::string& p) { return std::shared_ptr<const ModelSource>(open_model(p)); }

bool same_bytes(const std::string& a, const std::string& b) { return read_text_file(a) == read_text_file(b); }

// The acceptance test of the GGUF writer and every quantizer: llama-quantize's own files, byte for byte.
TEST(GgufQuantize, ReproducesLlamaQuantizeByteForByte) {
  if (!std::filesystem::exists(kRef)) GTEST_SKIP() << "llama.cpp reference files not present at " << kRef;
  const std::string dir = testing::TempDir();
  for (const char* type : {"Q8_0", "Q4_0", "Q4_K_M", "Q2_K"}) {
    GgufQuantizeOptions o;
    o.mix.ftype = *file_type_from_name(type);
    o.threads = 2;
    std::string lower = type;
    for (auto& c : lower) c = static_cast<char>(std::tolower(c));
    quantize_to_gguf(open(kRef + "model-f32.gguf"), dir + "/q.gguf", o);
    EXPECT_TRUE(same_bytes(dir + "/q.gguf", kRef + "model-" + lower + ".gguf")) << type;
  }
  // With llama-imatrix's importance matrix (the recorded path is the one given, as llama-quantize records it).
  const Imatrix imatrix = read_imatrix(kRef + "imatrix.dat");
  EXPECT_EQ(imatrix.entries.size(), 28u);
  EXPECT_EQ(imatrix.chunks, 20);
  GgufQuantizeOptions o;
  o.mix.ftype = FileType::Q4_K_M;
  o.imatrix = &imatrix;
  o.imatrix_path = "imatrix.dat";
  o.threads = 2;
  quantize_to_gguf(open(kRef + "model-f32.gguf"), dir + "/qi.gguf", o);
  EXPECT_TRUE(same_bytes(dir + "/qi.gguf", kRef + "model-q4_k_m-imatrix.gguf"));
}

TEST(GgufQuantize, HfFolderConvertsToLlamaCppsF32FileAndQuantizesTheSame) {
  if (!std::filesystem::exists(kRef)) GTEST_SKIP() << "llama.cpp reference files not present";
  const std::string dir = testing::TempDir();
  GgufQuantizeOptions convert;
  convert.converter_layout = true;
  convert.mix.ftype = FileType::ALL_F32;
  convert.model_name = "Hf";  // convert_hf_to_gguf.py names the model after its folder, "hf"
  quantize_to_gguf(open(kModels + "tiny-gutenberg"), dir + "/f32.gguf", convert);
  EXPECT_TRUE(same_bytes(dir + "/f32.gguf", kRef + "model-f32.gguf"));
  // Quantizing the HF folder directly gives the same tensors as quantizing llama.cpp's conversion.
  GgufQuantizeOptions q;
  q.mix.ftype = FileType::Q4_K_M;
  q.model_name = "Hf";
  quantize_to_gguf(open(kModels + "tiny-gutenberg"), dir + "/direct.gguf", q);
  EXPECT_TRUE(same_bytes(dir + "/direct.gguf", kRef + "model-q4_k_m.gguf"));
}

TEST(GgufQuantize, SameBytesForAnyThreadCount) {
  const std::string dir = testing::TempDir();
  for (int t : {1, 2, 3}) {
    GgufQuantizeOptions o;
    o.mix.ftype = FileType::Q4_K_M;
    o.threads = t;
    quantize_to_gguf(open(kModels + "tiny-gutenberg"), dir + "/t" + std::to_string(t) + ".gguf", o);
  }
  EXPECT_TRUE(same_bytes(dir + "/t1.gguf", dir + "/t2.gguf"));
  EXPECT_TRUE(same_bytes(dir + "/t1.gguf", dir + "/t3.gguf"));
}

// Row chunks are converted and checked on the worker threads; the error still names the tensor's first bad value,
// not whichever chunk a thread happened to finish first.
TEST(GgufQuantize, ReportsTheFirstNonFiniteValueForAnyThreadCount) {
  ModelConfig c;
  c.n_vocab = 2048, c.n_embd = 64, c.n_layer = 1, c.n_head = 2, c.n_head_kv = 2, c.n_ff = 64, c.n_ctx_train = 32;
  c.tied_embeddings = true;
  auto model = make_random_model(c, 3);
  // token_embd is 2048 rows of 64: eight chunks of 256 rows. Bad values in chunks 6, 3 and 7.
  model->set_value("token_embd.weight", 6 * 256 * 64 + 5, INFINITY);
  model->set_value("token_embd.weight", 3 * 256 * 64 + 130, NAN);
  model->set_value("token_embd.weight", 7 * 256 * 64, -INFINITY);
  for (int t : {1, 2, 3}) {
    GgufQuantizeOptions o;
    o.mix.ftype = FileType::Q8_0;
    o.threads = t;
    try {
      quantize_to_gguf(model, testing::TempDir() + "/bad.gguf", o);
      ADD_FAILURE() << "NaN accepted with " << t << " threads";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("token_embd.weight: NaN at index 49282 (row 770, column 2)"),
                std::string::npos)
          << t << " threads: " << e.what();
    }
  }
}

TEST(GgufQuantize, MisfitRowsKeepF16AndSayWhy) {
  // stories260K: FFN width 172 fits no block type; llama-quantize gives up on Q8_0, lowbit keeps F16.
  GgufQuantizeOptions o;
  o.mix.ftype = FileType::Q8_0;
  const std::string out = testing::TempDir() + "/stories-q8.gguf";
  const QuantizeReport r = quantize_to_gguf(open(kModels + "stories260K/stories260K.bin"), out, o);
  int f16 = 0;
  for (const auto& t : r.tensors)
    if (t.name.find("ffn_down") != std::string::npos) {
      EXPECT_EQ(t.to, DType::F16) << t.name;
      EXPECT_NE(t.note.find("172"), std::string::npos) << t.note;
      ++f16;
    }
  EXPECT_EQ(f16, 5);
  const GgufFile g = open_gguf(out);
  EXPECT_EQ(g.find_tensor("blk.0.ffn_up.weight")->info.type, DType::Q8_0);
}

TEST(GgufQuantize, RefusesNaNRequantizeAndBadImatrix) {
  const std::string dir = testing::TempDir();
  ModelConfig c;
  c.n_vocab = 64, c.n_embd = 64, c.n_layer = 1, c.n_head = 2, c.n_head_kv = 2, c.n_ff = 64, c.n_ctx_train = 32;
  c.tied_embeddings = true;
  auto model = make_random_model(c, 1);
  auto nan = make_random_model(c, 1);
  nan->set_value("blk.0.ffn_up.weight", 77, NAN);
  GgufQuantizeOptions o;
  o.mix.ftype = FileType::Q8_0;
  try {
    quantize_to_gguf(nan, dir + "/nan.gguf", o);
    ADD_FAILURE() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_up.weight: NaN at index 77"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/nan.gguf"));  // no half file under the real name
  // An already quantized input needs --allow-requantize.
  quantize_to_gguf(model, dir + "/q8.gguf", o);
  o.mix.ftype = FileType::Q4_0;
  EXPECT_THROW(quantize_to_gguf(open(dir + "/q8.gguf"), dir + "/q4.gguf", o), Error);
  o.allow_requantize = true;
  EXPECT_NO_THROW(quantize_to_gguf(open(dir + "/q8.gguf"), dir + "/q4.gguf", o));
  // An importance matrix for another model: wrong sizes, or no matching names.
  Imatrix wrong;
  wrong.entries["blk.0.ffn_up.weight"] = {std::vector<float>(10, 1.0f), 1, 1};
  o.imatrix = &wrong;
  o.imatrix_path = "wrong.dat";
  EXPECT_THROW(quantize_to_gguf(model, dir + "/x.gguf", o), Error);
  Imatrix other;
  other.entries["blk.9.attn_q.weight"] = {std::vector<float>(64, 1.0f), 1, 1};
  o.imatrix = &other;
  EXPECT_THROW(quantize_to_gguf(model, dir + "/x.gguf", o), Error);
  // An unwritable target.
  o.imatrix = nullptr;
  EXPECT_THROW(quantize_to_gguf(model, "/nonexistent-dir/x.gguf", o), Error);
}

}  // namespace
}  // namespace lowbit
