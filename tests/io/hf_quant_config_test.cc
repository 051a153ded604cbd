#include "io/hf_quant_config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const std::string kDir = std::string(LOWBIT_SHARED_DATA) + "/quantized-configs/gptq/";

TEST(HfQuantConfig, ReadsPublishedGptqConfigs) {
  if (!std::filesystem::exists(kDir)) GTEST_SKIP() << "shared quantized-configs not present";
  struct Case { const char* path; int bits; int group; bool desc_act; double damp; };
  // Values from shared/data/PROVENANCE.md (section 8) for TheBloke's branches.
  const Case cases[] = {
      {"TheBloke--Wizard-Vicuna-30B-Uncensored-GPTQ/main/quantize_config.json", 4, -1, true, 0.01},
      {"TheBloke--Wizard-Vicuna-30B-Uncensored-GPTQ/gptq-4bit-32g-actorder_True/quantize_config.json", 4, 32, true, 0.01},
      {"TheBloke--Wizard-Vicuna-30B-Uncensored-GPTQ/gptq-3bit-128g-actorder_False/quantize_config.json", 3, 128, false, 0.01},
      {"TheBloke--Wizard-Vicuna-30B-Uncensored-GPTQ/gptq-8bit-128g-actorder_False/config.json", 8, 128, false, 0.01},
      {"TheBloke--Genz-70b-GPTQ/main/config.json", 4, 128, true, 0.1},
      {"TheBloke--Genz-70b-GPTQ/gptq-3bit--1g-actorder_True/quantize_config.json", 3, -1, true, 0.1},
      {"TheBloke--Llama-2-13B-chat-GPTQ/config.json", 4, 128, false, 0.01},
      {"TheBloke--WizardCoder-15B-1.0-GPTQ/quantize_config.json", 4, 128, false, 0.01},
      {"Qwen--Qwen-VL-Chat-Int4/quantize_config.json", 4, 128, false, 0.01},
  };
  for (const auto& c : cases) {
    const std::string path = kDir + c.path;
    const HfQuantConfig q = parse_hf_quant_config(read_text_file(path), path);
    EXPECT_EQ(q.quant_method, "gptq") << c.path;
    EXPECT_EQ(q.bits, c.bits) << c.path;
    EXPECT_EQ(q.group_size, c.group) << c.path;
    EXPECT_EQ(q.desc_act, c.desc_act) << c.path;
    EXPECT_DOUBLE_EQ(q.damp_percent, c.damp) << c.path;
    EXPECT_TRUE(q.sym) << c.path;
  }
  // The old-style WizardCoder config.json has no quantization_config block at all.
  EXPECT_THROW(parse_hf_quant_config(read_text_file(kDir + "TheBloke--WizardCoder-15B-1.0-GPTQ/config.json"), "c"), Error);
}

TEST(HfQuantConfig, WritesTheFieldsLoadersRead) {
  HfQuantConfig c;
  c.bits = 3;
  c.group_size = 64;
  c.desc_act = true;
  c.sym = false;
  auto block = hf_quantization_config_block(c);
  for (const char* key : {"bits", "group_size", "desc_act", "sym", "damp_percent", "true_sequential",
                          "checkpoint_format", "quant_method"})
    EXPECT_TRUE(block.contains(key)) << key;
  EXPECT_EQ(block["checkpoint_format"], "gptq");
  const HfQuantConfig back = parse_hf_quant_config(hf_quantize_config_file(c), "quantize_config.json");
  EXPECT_EQ(back.bits, 3);
  EXPECT_EQ(back.group_size, 64);
  EXPECT_TRUE(back.desc_act);
  EXPECT_FALSE(back.sym);

  HfQuantConfig awq;
  awq.quant_method = "awq";
  awq.sym = false;
  auto ab = hf_quantization_config_block(awq);
  EXPECT_EQ(ab["quant_method"], "awq");
  EXPECT_EQ(ab["zero_point"], true);
  EXPECT_EQ(ab["version"], "gemm");
  const HfQuantConfig awq_back = parse_hf_quant_config(hf_quantize_config_file(awq), "quant_config.json");
  EXPECT_EQ(awq_back.quant_method, "awq");  // recognised by AutoAWQ's w_bit / q_group_size keys
  EXPECT_FALSE(awq_back.sym);
}

TEST(HfQuantConfig, RejectsNonsense) {
  EXPECT_THROW(parse_hf_quant_config("{\"bits\": 17}", "q.json"), Error);
  EXPECT_THROW(parse_hf_quant_config("{\"bits\": \"four\"}", "q.json"), Error);
  EXPECT_THROW(parse_hf_quant_config("{\"quant_method\": \"bitsandbytes\"}", "q.json"), Error);
  EXPECT_THROW(parse_hf_quant_config("[1,2]", "q.json"), Error);
  EXPECT_THROW(parse_hf_quant_config("{", "q.json"), Error);
}

}  // namespace
}  // namespace lowbit
