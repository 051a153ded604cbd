// A model held in memory: synthetic models for tests and tools, built from a config.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/model_source.h"

namespace lowbit {

class MemoryModelSource : public ModelSource {
 public:
  MemoryModelSource(ModelConfig config, Vocab vocab = {}, std::vector<Tensor> tensors = {},
                    std::string path = "<memory>");
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }
  Tensor tensor(const std::string& name) const override;
  // Overwrites one element of an F32 tensor (tests use it to plant NaNs and outliers).
  void set_value(const std::string& name, int64_t index, float value);
  // Adds `t`, or replaces the tensor of the same name in its place (tests use it to plant wrong shapes).
  void add(Tensor t);
  void remove(const std::string& name);

 private:
  std::string path_;
  ModelConfig config_;
  Vocab vocab_;
  std::vector<Tensor> tensors_;
  std::vector<TensorInfo> infos_;
};

// A Llama-shaped model with seeded random weights (norms near 1, matrices ~ N(0, 1/sqrt(n_in))) and a
// byte-level toy vocabulary of config.n_vocab tokens. Matrices are stored as `weight_type` (any type with a
// quantizer; the values drawn are the same whatever the type), norms and biases as F32.
std::shared_ptr<MemoryModelSource> make_random_model(const ModelConfig& config, uint64_t seed,
                                                     DType weight_type = DType::F32);

// `random:tiny`, `random:110M` or `random:1B` (TinyLlama-1.1B shapes): a random-weight Llama in F16 for speed
// measurements, opened by open_model like a file.
std::unique_ptr<ModelSource> open_random_model(const std::string& spec);

}  // namespace lowbit
