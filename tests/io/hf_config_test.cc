#include "io/hf_config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "util/error.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const std::string kConfigs = std::string(LOWBIT_SHARED_DATA) + "/hf-configs/";

ModelConfig load(const std::string& name) { return load_hf_config(kConfigs + name); }

#define SKIP_IF_ABSENT()                                                 \
  if (!fs::exists(kConfigs)) GTEST_SKIP() << "no shared hf-configs at " << kConfigs

std::string error_of(const std::string& text) {
  try {
    parse_hf_config(text, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfConfig, Llama31) {
  SKIP_IF_ABSENT();
  const auto c = load("llama-3.1-8b");
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_embd, 4096);
  EXPECT_EQ(c.n_layer, 32);
  EXPECT_EQ(c.n_head, 32);
  EXPECT_EQ(c.n_head_kv, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.n_ff, 14336);
  EXPECT_EQ(c.n_vocab, 128256);
  EXPECT_EQ(c.n_ctx_train, 131072);
  EXPECT_FLOAT_EQ(c.rope.theta, 500000.0f);
  EXPECT_EQ(c.rope.scaling, RopeScaling::Llama3);
  EXPECT_FLOAT_EQ(c.rope.factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope.original_context, 8192);
  EXPECT_FALSE(c.rope.neox);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
}

TEST(HfConfig, Llama32TiedWithExplicitHeadDim) {
  SKIP_IF_ABSENT();
  const auto c = load("llama-3.2-1b");
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_FLOAT_EQ(c.rope.factor, 32.0f);
  EXPECT_EQ(c.n_layer, 16);
}

TEST(HfConfig, MistralSlidingWindow) {
  SKIP_IF_ABSENT();
  const auto c = load("mistral-7b-v0.1");
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.hf_architecture, "MistralForCausalLM");
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.n_head_kv, 8);
  EXPECT_EQ(c.n_ctx_train, 32768);
  EXPECT_EQ(c.rope.scaling, RopeScaling::None);
}

TEST(HfConfig, Qwen25HasQkvBiasAndNeox) {
  SKIP_IF_ABSENT();
  const auto c = load("qwen2.5-0.5b-instruct");
  EXPECT_EQ(c.arch, "qwen2");
  EXPECT_TRUE(c.attn_qkv_bias);
  EXPECT_FALSE(c.attn_qk_norm);
  EXPECT_TRUE(c.rope.neox);
  EXPECT_EQ(c.n_embd, 896);
  EXPECT_EQ(c.n_head, 14);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.sliding_window, 0);  // use_sliding_window: false
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c.rope.theta, 1e6f);
  EXPECT_TRUE(c.tied_embeddings);
}

TEST(HfConfig, Qwen3HasQkNormAndHeadDim) {
  SKIP_IF_ABSENT();
  const auto c = load("qwen3-8b");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.arch, "qwen3");
  EXPECT_TRUE(c.attn_qk_norm && !c.attn_qkv_bias);
  EXPECT_EQ(c.n_layer, 36);
  EXPECT_EQ(c.n_ff, 12288);
  EXPECT_EQ(c.sliding_window, 0);  // null
  EXPECT_TRUE(c.rope.neox);
}

TEST(HfConfig, SmolLmOddHeadCounts) {
  SKIP_IF_ABSENT();
  const auto c = load("smollm2-135m-instruct");
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_FLOAT_EQ(c.rope.theta, 100000.0f);
}

TEST(HfConfig, EveryConfigParsesOrFailsClearly) {
  SKIP_IF_ABSENT();
  int parsed = 0;
  for (const auto& d : fs::directory_iterator(kConfigs)) {
    if (!fs::exists(d.path() / "config.json")) {
      try {
        load_hf_config(d.path().string());
        ADD_FAILURE() << d.path();
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
      }
      continue;
    }
    const auto c = load_hf_config(d.path().string());
    // Round trip through the exporter.
    const auto back = parse_hf_config(hf_config_json(c), "export");
    EXPECT_EQ(back.arch, c.arch);
    EXPECT_EQ(back.n_embd, c.n_embd);
    EXPECT_EQ(back.n_head_kv, c.n_head_kv);
    EXPECT_EQ(back.head_dim, c.head_dim);
    EXPECT_EQ(back.n_vocab, c.n_vocab);
    EXPECT_EQ(back.norm_eps, c.norm_eps);
    EXPECT_EQ(back.rope.theta, c.rope.theta);
    EXPECT_EQ(back.rope.scaling, c.rope.scaling);
    EXPECT_EQ(back.rope.factor, c.rope.factor);
    EXPECT_EQ(back.rope.original_context, c.rope.original_context);
    EXPECT_EQ(back.tied_embeddings, c.tied_embeddings);
    EXPECT_EQ(back.sliding_window, c.sliding_window);
    EXPECT_EQ(back.hf_architecture, c.hf_architecture);
    ++parsed;
  }
  EXPECT_GE(parsed, 9);
}

TEST(HfConfig, ExportLooksLikeTransformers) {
  SKIP_IF_ABSENT();
  const auto text = hf_config_json(load("llama-3.1-8b"), {.torch_dtype = "bfloat16", .bos_token_id = 128000});
  EXPECT_NE(text.find("  \"rms_norm_eps\": 1e-05,\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rope_type\": \"llama3\""), std::string::npos);
  EXPECT_NE(text.find("\"bos_token_id\": 128000"), std::string::npos);
  EXPECT_EQ(text.find("eos_token_id"), std::string::npos);
  EXPECT_EQ(text.rfind("{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],", 0), 0u) << text;
}

TEST(HfConfig, RefusesWhatItCannotRun) {
  const std::string base = R"("hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,)"
                           R"("intermediate_size":128,"vocab_size":100)";
  EXPECT_NE(error_of(R"({"architectures":["Phi3ForCausalLM"],)" + base + "}")
                .find("architecture 'Phi3ForCausalLM' is not supported (supported: LlamaForCausalLM, "),
            std::string::npos);
  EXPECT_NE(error_of(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64})")
                .find("'num_hidden_layers' is missing"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"dynamic","factor":2},)" + base +
                     "}")
                .find("'dynamic' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"architectures":["LlamaForCausalLM"],"hidden_act":"gelu",)" + base + "}").find("gelu"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"architectures":["LlamaForCausalLM"],"hidden_size":"64"})").find("integer"),
            std::string::npos);
  EXPECT_NE(error_of("[1]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"architectures":["LlamaForCausalLM"],"num_key_value_heads":3,)" + base + "}")
                .find("kv heads"),
            std::string::npos);
  // Linear and yarn scaling under either key name.
  const auto lin = parse_hf_config(
      R"({"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"linear","factor":4},)" + base + "}", "x");
  EXPECT_EQ(lin.rope.scaling, RopeScaling::Linear);
  EXPECT_FLOAT_EQ(lin.rope.factor, 4.0f);
  const auto yarn = parse_hf_config(R"({"architectures":["Qwen2ForCausalLM"],"rope_scaling":{"rope_type":"yarn",)"
                                    R"("factor":4,"original_max_position_embeddings":32768},)" +
                                        base + "}",
                                    "x");
  EXPECT_EQ(yarn.rope.scaling, RopeScaling::Yarn);
  EXPECT_EQ(yarn.rope.original_context, 32768);
  EXPECT_EQ(yarn.head_dim, 16);
  EXPECT_EQ(yarn.n_head_kv, 4);  // defaults to the head count
}

}  // namespace
}  // namespace lowbit
