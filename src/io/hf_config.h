// Hugging Face config.json <-> lowbit::ModelConfig for the decoder families lowbit runs: Llama (and Mistral,
// which is Llama with a sliding window), Qwen2 (q/k/v biases) and Qwen3 (q/k RMS norms).
#pragma once

#include <string>

#include "model/config.h"

namespace lowbit {

// Parses config.json text. `where` names the file in errors. Unsupported architectures, activations or biases
// are refused with a message naming them.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& where);
// Reads <folder>/config.json (or `path` itself when it is a .json file).
ModelConfig load_hf_config(const std::string& path);

struct HfConfigExtras {
  std::string torch_dtype = "float16";
  int64_t bos_token_id = -1;  // written when >= 0
  int64_t eos_token_id = -1;
};

// The config.json transformers would write for `config` (sorted keys, 2-space indent, trailing newline).
std::string hf_config_json(const ModelConfig& config, const HfConfigExtras& extras = {});

}  // namespace lowbit
