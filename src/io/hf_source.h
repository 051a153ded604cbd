// Hugging Face models as ModelSources: a folder (config.json + model.safetensors or a sharded
// model.safetensors.index.json + tokenizer files) or a lone .safetensors file with config.json beside it.
// Tensors come out under canonical GGUF names and shapes; Llama q/k rows are permuted to GGUF's rotary layout.
#pragma once

#include <memory>
#include <string>

#include "io/model_source.h"

namespace lowbit {

std::unique_ptr<ModelSource> open_hf_model(const std::string& folder);
std::unique_ptr<ModelSource> open_safetensors_model(const std::string& file);

}  // namespace lowbit
