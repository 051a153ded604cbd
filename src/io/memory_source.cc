#include "io/memory_source.h"

#include <cstring>

#include "model/tensor_layout.h"
#include "util/error.h"

namespace lowbit {

MemoryModelSource::MemoryModelSource(ModelConfig config, Vocab vocab, std::string path)
    : path_(std::move(path)), config_(std::move(config)), vocab_(std::move(vocab)) {}

Tensor MemoryModelSource::tensor(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name() == name) return t;
  fail(path_, "no tensor named '{}'", name);
}

void MemoryModelSource::add(Tensor t) {
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].name() == t.name()) {
      infos_[i] = t.info;
      tensors_[i] = std::move(t);
      return;
    }
  }
  infos_.push_back(t.info);
  tensors_.push_back(std::move(t));
}

void MemoryModelSource::remove(const std::string& name) {
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].name() == name) {
      tensors_.erase(tensors_.begin() + static_cast<std::ptrdiff_t>(i));
      infos_.erase(infos_.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
}

namespace {

// SplitMix64, mapped to [-1, 1) from its top 24 bits (exact in float).
struct SplitMix {
  uint64_t state;
  float next_signed() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * 0x1.0p-23f - 1.0f;
  }
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<MemoryModelSource> make_random_llama(const ModelConfig& config, DType weight_type, uint64_t seed,
                                                      float scale) {
  config.validate("make_random_llama");
  auto src = std::make_unique<MemoryModelSource>(config);
  SplitMix rng{seed};
  for (TensorInfo info : llama_tensor_layout(config, weight_type)) {
    std::vector<float> values(static_cast<size_t>(info.n_elements()));
    const bool is_norm = ends_with(info.name, "norm.weight"), is_bias = ends_with(info.name, ".bias");
    for (float& v : values) {
      const float r = rng.next_signed();
      v = is_norm ? 1.0f + 0.25f * r : is_bias ? 0.1f * r : scale * r;
    }
    std::vector<uint8_t> bytes(info.n_bytes());
    quantize_rows(info.type, values.data(), bytes.data(), info.n_rows(), info.ne[0], nullptr, info.name);
    src->add(make_owned_tensor(info, std::move(bytes)));
  }
  return src;
}

}  // namespace lowbit
