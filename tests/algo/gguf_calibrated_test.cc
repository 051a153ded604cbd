#include "algo/gguf_calibrated.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "algo/imatrix.h"
#include "eval/perplexity.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kRoot = LOWBIT_SOURCE_DIR;
const std::string kCalib = kRoot + "/data/calib-shakespeare.txt";

double mean_kld(const std::string& model_path, const std::string& base_logits, bool save) {
  std::shared_ptr<const ModelSource> src = open_model(model_path);
  Tokenizer tok(src->vocab());
  LlamaModel model(src, {128, 2});
  PerplexityOptions o;
  o.n_ctx = 128;
  o.n_chunks = 8;
  o.bos = tok.vocab().bos_id;
  (save ? o.save_logits : o.kld_base) = base_logits;
  const auto r = compute_perplexity(model, tok.encode(read_text_file(kRoot + "/data/wiki.test.head.raw"), true), o);
  return save ? 0.0 : r.kld->kld_mean;
}

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
  mean_kld(kRoot + "/models/tiny-gutenberg", base, true);

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
  const double k_imx = mean_kld(dir + "/imx.gguf", base, false), k_gptq = mean_kld(dir + "/gptq.gguf", base, false);
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
