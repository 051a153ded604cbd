#include "algo/gguf_calibrated.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "algo/hf_int_quantize.h"
#include "algo/imatrix.h"
#include "io/hf_source.h"
#include "io/hf_tokenizer_writer.h"
#include "io/memory_source.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "support/wiki_head_kld.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kRoot = LOWBIT_SOURCE_DIR;
const std::string kCalib = kRoot + "/data/calib-shakespeare.txt";

GgufQuantizeOptions q4_k_m() {
  GgufQuantizeOptions g;
  g.mix.ftype = *file_type_from_name("Q4_K_M");
  g.threads = 2;
  return g;
}

CalibratedGgufOptions gptq_options() {
  CalibratedGgufOptions c;
  c.method = "gptq";
  c.calib = {kCalib, 32, 128, 3};
  return c;
}

// The edge over llama-quantize: at the same types and bytes, GPTQ's Q4_K_M loses less than Q4_K_M made with an
// importance matrix from the same calibration text. Also: killed and resumed gives the same bytes.
TEST(GgufCalibrated, GptqQ4KMBeatsImatrixQ4KMAtTheSameSize) {
  const std::string dir = testing::TempDir() + "/gguf-calibrated";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::shared_ptr<const ModelSource> src = open_model(kRoot + "/models/tiny-gutenberg");
  const std::string base = dir + "/base.logits";
  save_wiki_head_logits(kRoot + "/models/tiny-gutenberg", base);

  // Baseline: an importance matrix over the calibration text, then plain Q4_K_M with it.
  ImatrixCollector collector;
  {
    LlamaModel model(src, {128, 2});
    Tokenizer tok(src->vocab());
    collect_imatrix(model, tok.encode(read_text_file(kCalib), false), 128, 32, tok.vocab().bos_id, collector);
  }
  GgufQuantizeOptions imx = q4_k_m();
  imx.imatrix = &collector.imatrix();
  imx.imatrix_path = "calib";
  const auto r_imx = quantize_to_gguf(src, dir + "/imx.gguf", imx);

  const auto r_gptq = quantize_to_gguf_calibrated(src, dir + "/gptq.gguf", q4_k_m(), gptq_options());
  EXPECT_EQ(r_gptq.quantize.bytes_out(), r_imx.bytes_out());
  ASSERT_EQ(r_gptq.linears.size(), 28u);
  for (const auto& l : r_gptq.linears) EXPECT_LT(l.error, 0.9 * l.rtn_error) << l.name;
  // Same tensor types as the plain mix.
  auto a = open_model(dir + "/gptq.gguf"), b = open_model(dir + "/imx.gguf");
  for (const auto& t : b->tensor_infos()) EXPECT_EQ(a->tensor_info(t.name).type, t.type) << t.name;
  const double k_imx = wiki_head_kld(dir + "/imx.gguf", base), k_gptq = wiki_head_kld(dir + "/gptq.gguf", base);
  EXPECT_LT(k_gptq, 0.95 * k_imx) << "GPTQ " << k_gptq << " vs imatrix " << k_imx;

  CalibratedGgufOptions killed = gptq_options();
  killed.stop_after_layers = 2;
  EXPECT_THROW(quantize_to_gguf_calibrated(src, dir + "/resumed.gguf", q4_k_m(), killed), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/resumed.gguf"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/resumed.gguf.lowbit-progress/layer-1.bin"));
  CalibratedGgufOptions resumed = gptq_options();
  resumed.resume = true;
  quantize_to_gguf_calibrated(src, dir + "/resumed.gguf", q4_k_m(), resumed);
  EXPECT_TRUE(read_text_file(dir + "/resumed.gguf") == read_text_file(dir + "/gptq.gguf"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/resumed.gguf.lowbit-progress"));
}

TEST(GgufCalibrated, AwqGgufLoadsWithRescaledNorms) {
  const std::string dir = testing::TempDir() + "/gguf-awq";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::shared_ptr<const ModelSource> src = open_model(kRoot + "/models/tiny-gutenberg");
  CalibratedGgufOptions c = gptq_options();
  c.method = "awq";
  c.calib.nsamples = 4;
  GgufQuantizeOptions g;
  g.mix.ftype = *file_type_from_name("Q4_0");
  const auto r = quantize_to_gguf_calibrated(src, dir + "/awq.gguf", g, c);
  EXPECT_EQ(r.linears.size(), 28u);
  auto out = open_model(dir + "/awq.gguf");
  EXPECT_EQ(out->tensor_info("blk.0.ffn_up.weight").type, DType::Q4_0);
  EXPECT_NE(tensor_to_f32(out->tensor("blk.0.ffn_norm.weight")), tensor_to_f32(src->tensor("blk.0.ffn_norm.weight")));
}

TEST(GgufCalibrated, RefusesRtnAndImatrix) {
  std::shared_ptr<const ModelSource> src = open_model(kRoot + "/models/tiny-gutenberg");
  CalibratedGgufOptions c = gptq_options();
  c.method = "rtn";
  EXPECT_THROW(quantize_to_gguf_calibrated(src, testing::TempDir() + "/x.gguf", q4_k_m(), c), Error);
  Imatrix m;
  GgufQuantizeOptions g = q4_k_m();
  g.imatrix = &m;
  EXPECT_THROW(quantize_to_gguf_calibrated(src, testing::TempDir() + "/x.gguf", g, gptq_options()), Error);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// A synthetic HF model with grouped-query attention (so AWQ skips the v -> o scaling, as AutoAWQ does): AWQ and
// GPTQ run from the folder, the AWQ checkpoint and the GPTQ GGUF read back with the planned shapes and types.
TEST(GgufCalibrated, SyntheticHfModelWithGroupedQueryAttention) {
  const std::string dir = testing::TempDir() + "/synthetic-hf";
  std::filesystem::remove_all(dir);
  ModelConfig c;
  c.n_vocab = 300, c.n_embd = 256, c.n_layer = 2, c.n_ff = 512, c.n_ctx_train = 128;
  c.n_head = 4, c.n_head_kv = 2;
  auto random = make_random_model(c, 9, DType::F16);
  write_hf_model(*random, dir + "/hf");
  write_hf_tokenizer(random->vocab(), dir + "/hf");
  std::shared_ptr<const ModelSource> src = open_model(dir + "/hf");

  HfIntQuantizeOptions h;
  h.method = "awq";
  h.config = {.bits = 4, .group_size = 128, .sym = false};
  h.calib = {kCalib, 8, 64, 1};
  const auto reports = quantize_to_hf(src, dir + "/awq", h);
  ASSERT_EQ(reports.size(), 14u);
  auto awq = open_model(dir + "/awq");
  EXPECT_EQ(awq->tensor_info("blk.1.attn_k.weight").ne[1], 128);
  EXPECT_EQ(awq->tensor_info("blk.1.ffn_down.weight").ne[0], 512);

  GgufQuantizeOptions g = q4_k_m();
  CalibratedGgufOptions o = gptq_options();
  o.calib = {kCalib, 8, 64, 1};
  quantize_to_gguf_calibrated(src, dir + "/gptq.gguf", g, o);
  std::shared_ptr<const ModelSource> gguf = open_model(dir + "/gptq.gguf");
  EXPECT_EQ(gguf->tensor_info("blk.0.ffn_gate.weight").type, DType::Q4_K);
  LlamaModel model(gguf, {16, 1});
  std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
  const std::vector<int32_t> prompt = {1, 72, 101, 108};
  model.eval(prompt, 0, logits.data(), false);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

// A NaN weight stops every calibrated method with an error naming the tensor and the element, not a garbage file.
TEST(GgufCalibrated, NanWeightIsAnErrorNamingTheTensor) {
  ModelConfig c;
  c.n_vocab = 300, c.n_embd = 256, c.n_layer = 1, c.n_ff = 256, c.n_ctx_train = 64;
  c.n_head = 4, c.n_head_kv = 4;
  auto random = make_random_model(c, 4);
  auto bad = std::make_shared<OverlaySource>(random);
  std::vector<float> w = tensor_to_f32(random->tensor("blk.0.ffn_up.weight"));
  w[300] = std::nanf("");
  bad->replace(make_f32_tensor("blk.0.ffn_up.weight", {256, 256}, w));
  const std::string dir = testing::TempDir() + "/nan";
  std::filesystem::remove_all(dir);
  for (const char* method : {"gptq", "awq"}) {
    HfIntQuantizeOptions h;
    h.method = method;
    h.calib = {kCalib, 2, 32, 1};
    try {
      quantize_to_hf(bad, dir + "/" + method, h);
      ADD_FAILURE() << method << " accepted a NaN weight";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("blk.0.ffn_up.weight"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
    }
  }
  CalibratedGgufOptions o = gptq_options();
  o.calib = {kCalib, 2, 32, 1};
  EXPECT_THROW(quantize_to_gguf_calibrated(bad, dir + "/x.gguf", q4_k_m(), o), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
}

}  // namespace
}  // namespace lowbit
