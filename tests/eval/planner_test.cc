#include "eval/planner.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "model/tensor_layout.h"
#include "util/error.h"

namespace lowbit {
namespace {

TEST(Planner, ParsesSizes) {
  EXPECT_DOUBLE_EQ(parse_param_count("70B"), 70e9);
  EXPECT_DOUBLE_EQ(parse_param_count("1.5b"), 1.5e9);
  EXPECT_DOUBLE_EQ(parse_param_count("135M"), 135e6);
  EXPECT_THROW(parse_param_count("seventy"), Error);
  EXPECT_THROW(parse_param_count("-3B"), Error);
  EXPECT_DOUBLE_EQ(parse_memory_size("24GiB"), 24.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(parse_memory_size("24GB"), 24e9);
  EXPECT_DOUBLE_EQ(parse_memory_size("16G"), 16.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(parse_memory_size("512MiB"), 512.0 * (1 << 20));
  EXPECT_THROW(parse_memory_size("24XB"), Error);
  EXPECT_THROW(kv_bytes_per_element("q5_9"), Error);
}

TEST(Planner, SeventyBillionAtSixteenBitsIs140GB) {
  PlanModel m = estimate_model(70e9);
  EXPECT_NEAR(m.n_params(), 70e9, 1);
  const double f16 = weight_bytes(m, {"F16", "float", "F16", 16, 0});
  // 2 bytes per weight, except the 1-D norms which GGUF keeps in F32 (80 layers x 2 x 8192 + 8192 values).
  EXPECT_NEAR(f16, 140e9, 140e9 * 1e-4);
  const double q4 = weight_bytes(m, {"Q4_K_M", "gguf", "Q4_K_M", 4, 0});
  EXPECT_GT(q4, 35e9);  // 4.5+ bits: scales and the Q6_K tensors add to the nominal 4 bits
  EXPECT_LT(q4, 45e9);
}

TEST(Planner, KvCacheArithmetic) {
  PlanModel m = estimate_model(8.03e9);  // Llama-3.1-8B shape: 32 layers, 8 kv heads x 128
  ASSERT_EQ(m.config.n_layer, 32);
  ASSERT_EQ(m.config.n_embd_kv(), 1024);
  PlanOptions o;
  o.n_ctx = 8192;
  o.mem_bytes = 1e12;
  Plan p = make_plan(m, o);
  EXPECT_DOUBLE_EQ(p.rows[0].kv_bytes, 2.0 * 32 * 8192 * 1024 * 2);  // exactly 1 GiB
  o.kv_type = "q8_0";
  o.batch = 2;
  p = make_plan(m, o);
  EXPECT_DOUBLE_EQ(p.rows[0].kv_bytes, 2.0 * 32 * 8192 * 1024 * 34.0 / 32.0 * 2);
}

TEST(Planner, GptqBytesByHand) {
  ModelConfig c;
  c.n_embd = 256;
  c.n_ff = 512;
  c.n_head = c.n_head_kv = 4;
  c.n_layer = 1;
  c.n_vocab = 1000;
  c.tied_embeddings = true;
  PlanModel m = plan_model_from("synthetic", c, llama_tensor_layout(c));
  // 4-bit weights: 655360 linear weights / 2 = 327680 bytes; groups of 128: 12800 bytes of fp16 scale + 4-bit
  // zero; g_idx: 4 bytes per input column of each linear (6 x 256 + 512); embedding and 3 norms in 16 bits.
  const double expected = 327680 + 12800 + 8192 + 2.0 * (256000 + 3 * 256);
  EXPECT_DOUBLE_EQ(weight_bytes(m, {"GPTQ w4g128", "gptq", "", 4, 128}), expected);
  EXPECT_DOUBLE_EQ(weight_bytes(m, {"AWQ w4g128", "awq", "", 4, 128}), expected - 8192);
}

TEST(Planner, RecommendsWhatFitsAndUsesMeasuredKld) {
  PlanModel m = estimate_model(8e9);
  PlanOptions o;
  o.mem_bytes = parse_memory_size("6.5GiB");
  Plan p = make_plan(m, o);
  for (const auto& r : p.rows) EXPECT_EQ(r.fits, r.total_bytes <= o.mem_bytes) << r.format.name;
  ASSERT_EQ(p.recommendations.size(), 2u);
  EXPECT_NE(p.recommendations[0].find("Q5_K_M"), std::string::npos) << p.recommendations[0];
  EXPECT_NE(p.recommendations[1].find("AWQ"), std::string::npos) << p.recommendations[1];

  const std::string report = testing::TempDir() + "/plan_report.json";
  std::ofstream(report) << R"({"variants":[{"plan_format":"Q4_K_M","kld":0.05},{"plan_format":"IQ4_XS","kld":0.02}]})";
  p = make_plan(m, o, report);
  EXPECT_NE(p.recommendations[0].find("IQ4_XS"), std::string::npos) << p.recommendations[0];
  std::ofstream(report) << "not json";
  EXPECT_THROW(make_plan(m, o, report), Error);
  std::remove(report.c_str());
}

}  // namespace
}  // namespace lowbit
