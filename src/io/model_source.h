// Any model lowbit can read (GGUF, safetensors file, HF folder, llama2.c checkpoint) seen one way: a canonical
// config, a vocabulary, and tensors under canonical GGUF names and shapes ("token_embd.weight",
// "blk.0.attn_q.weight", ...). Tensors are produced lazily, one at a time, usually as views into the mapped
// file, so a caller that walks them in order never holds more than one in memory.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/vocab.h"

namespace lowbit {

class ModelSource {
 public:
  virtual ~ModelSource() = default;
  virtual const std::string& path() const = 0;
  virtual std::string format() const = 0;  // "gguf", "safetensors", "hf", "llama2c"
  virtual const ModelConfig& config() const = 0;
  virtual const Vocab& vocab() const = 0;  // may be empty (no tokenizer found)
  // Canonical names and infos in file order (GGUF order for GGUF inputs, layer order otherwise).
  virtual const std::vector<TensorInfo>& tensor_infos() const = 0;
  // The tensor's bytes in its stored type. Throws Error naming the file if `name` is not there.
  virtual Tensor tensor(const std::string& name) const = 0;
  // A weight as the engine should multiply it: tensor() by default; GPTQ/AWQ checkpoints give their integer
  // groups (engine-only I4G blocks, algo/int_quant.h) where tensor() gives the dequantized F16.
  virtual Tensor matmul_tensor(const std::string& name) const { return tensor(name); }
  // Format-specific metadata as printable key/value pairs (GGUF key/values with long arrays summarised,
  // safetensors __metadata__), for `lowbit inspect`. Empty by default.
  virtual std::vector<std::pair<std::string, std::string>> metadata_strings() const { return {}; }
  bool has_tensor(const std::string& name) const;
  const TensorInfo& tensor_info(const std::string& name) const;
};

struct OpenOptions {
  std::string tokenizer_path;  // llama2.c: the tokenizer .bin (or a tokenizer.model); default: beside the model
};

// Opens whatever `path` is; throws Error naming the path and what is wrong (not found, unknown format,
// unsupported architecture, ...).
std::unique_ptr<ModelSource> open_model(const std::string& path, const OpenOptions& options = {});

}  // namespace lowbit
