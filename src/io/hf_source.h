// Hugging Face models as ModelSources: a folder (config.json + model.safetensors or a sharded
// model.safetensors.index.json + tokenizer files) or a lone .safetensors file with config.json beside it.
// Tensors come out under canonical GGUF names and shapes; Llama q/k rows are permuted to GGUF's rotary layout.
#pragma once

#include <memory>
#include <string>

#include "io/model_source.h"
#include "io/safetensors.h"

namespace lowbit {

std::unique_ptr<ModelSource> open_hf_model(const std::string& folder);
std::unique_ptr<ModelSource> open_safetensors_model(const std::string& file);

// Writes `source` as a Hugging Face folder: config.json and model.safetensors (sharded above
// options.max_shard_bytes, with model.safetensors.index.json), HF tensor names and shapes, Llama q/k rows
// permuted back to HF's rotate-half layout. Tensors keep their stored types, which must be plain types
// safetensors has (F32, F16, BF16, ...): quantized tensors are refused. No tokenizer files are written.
// Returns the paths written.
std::vector<std::string> write_hf_model(const ModelSource& source, const std::string& folder,
                                        const SafetensorsWriteOptions& options = {});

}  // namespace lowbit
