// GGUF files as ModelSources (config from `<arch>.*` keys, vocabulary from `tokenizer.ggml.*`, tensors as views
// of the mapped file), and the reverse: the metadata llama.cpp's converter writes for a model.
#pragma once

#include <memory>
#include <string>

#include "io/gguf.h"
#include "io/model_source.h"

namespace lowbit {

std::unique_ptr<ModelSource> open_gguf_model(const std::string& path);

// Config and vocabulary as read from GGUF metadata (exposed for tests and tools). A file without tensors
// (vocab-only) gets an unvalidated config.
ModelConfig gguf_model_config(const GgufFile& file);
Vocab gguf_vocab(const GgufMetadata& metadata, const std::string& where);

struct GgufModelInfo {
  std::string name = "Model";  // general.name
  uint32_t file_type = 0;      // general.file_type (llama_ftype)
  double n_params = 0;         // for general.size_label
};

// general.*, <arch>.* and tokenizer.ggml.* in the order, types and spelling of convert_hf_to_gguf.py, plus
// general.quantization_version, so stock llama.cpp loads the result.
GgufMetadata gguf_metadata_for_model(const ModelConfig& config, const Vocab& vocab, const GgufModelInfo& info);

// gguf-py's size label: "3.7M", "8.0B", "70B".
std::string gguf_size_label(double n_params);

}  // namespace lowbit
