// A ModelSource held in memory: a config, a vocabulary and owned tensors. For synthetic models in tests and for
// tools that build a model on the fly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/model_source.h"

namespace lowbit {

class MemoryModelSource : public ModelSource {
 public:
  explicit MemoryModelSource(ModelConfig config, Vocab vocab = {}, std::string path = "<memory>");
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }
  Tensor tensor(const std::string& name) const override;
  // Adds `t`, or replaces the tensor of the same name (keeping its place in the order).
  void add(Tensor t);
  void remove(const std::string& name);
  ModelConfig& mutable_config() { return config_; }

 private:
  std::string path_;
  ModelConfig config_;
  Vocab vocab_;
  std::vector<TensorInfo> infos_;
  std::vector<Tensor> tensors_;
};

// A Llama-family model of `config` with random weights (a fixed SplitMix64 stream from `seed`, so the same on
// every machine): matrices uniform in [-scale, scale] stored as `weight_type` (any type with a quantizer), norm
// weights near 1, biases small. Tensor names and shapes follow llama_tensor_layout.
std::unique_ptr<MemoryModelSource> make_random_llama(const ModelConfig& config, DType weight_type, uint64_t seed,
                                                      float scale = 0.2f);

}  // namespace lowbit
