// The quantization metadata of Hugging Face GPTQ and AWQ checkpoints: AutoGPTQ/GPTQModel's
// quantize_config.json, AutoAWQ's quant_config.json, and the `quantization_config` block of config.json that
// transformers, vLLM and GPTQModel read.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace lowbit {

struct HfQuantConfig {
  std::string quant_method = "gptq";      // "gptq" or "awq"
  int bits = 4;
  int group_size = 128;                   // -1: one group per output channel (whole input dimension)
  bool desc_act = false;                  // GPTQ act-order
  bool sym = true;                        // GPTQ symmetric; AWQ: !zero_point
  bool static_groups = false;
  double damp_percent = 0.01;
  bool true_sequential = true;
  std::string checkpoint_format = "gptq"; // GPTQ v1 layout (qzeros store zero - 1)
  std::string awq_version = "gemm";       // AWQ kernel layout
  std::optional<std::string> model_file_base_name = std::string("model");
};

// From quantize_config.json, quant_config.json (AutoAWQ's w_bit/q_group_size spelling) or a config.json that
// holds a quantization_config block. Throws Error naming `where` for anything else or out-of-range values.
HfQuantConfig parse_hf_quant_config(const std::string& json_text, const std::string& where);
// The quantize_config.json AutoGPTQ/GPTQModel write (GPTQ) or quant_config.json AutoAWQ writes (AWQ).
std::string hf_quantize_config_file(const HfQuantConfig& config);
// The `quantization_config` block for config.json.
nlohmann::ordered_json hf_quantization_config_block(const HfQuantConfig& config);

}  // namespace lowbit
