#include "io/memory_source.h"

#include <cmath>
#include <cstring>
#include <random>

#include "model/tensor_layout.h"
#include "util/error.h"

namespace lowbit {

MemoryModelSource::MemoryModelSource(ModelConfig config, Vocab vocab, std::vector<Tensor> tensors, std::string path)
    : path_(std::move(path)), config_(std::move(config)), vocab_(std::move(vocab)), tensors_(std::move(tensors)) {
  for (const auto& t : tensors_) infos_.push_back(t.info);
}

Tensor MemoryModelSource::tensor(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name() == name) return t;
  fail(path_, "no tensor named '{}'", name);
}

void MemoryModelSource::set_value(const std::string& name, int64_t index, float value) {
  for (auto& t : tensors_) {
    if (t.name() != name) continue;
    check(t.type() == DType::F32 && index >= 0 && index < t.info.n_elements(), name, "cannot set element {}", index);
    // Copy on write: the bytes may be shared with another model made from the same tensors.
    std::vector<uint8_t> bytes(t.bytes().begin(), t.bytes().end());
    std::memcpy(bytes.data() + index * 4, &value, 4);
    t = make_owned_tensor(t.info, std::move(bytes));
    return;
  }
  fail(path_, "no tensor named '{}'", name);
}

std::shared_ptr<MemoryModelSource> make_random_model(const ModelConfig& config, uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Box-Muller on raw 64-bit draws keeps the values identical across standard libraries.
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  auto normal = [&] { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(2 * M_PI * uniform()); };
  std::vector<Tensor> tensors;
  for (const auto& info : llama_tensor_layout(config)) {
    std::vector<float> v(static_cast<size_t>(info.n_elements()));
    const bool is_norm = info.n_dims == 1 && info.name.find("norm") != std::string::npos;
    const double scale = 1.0 / std::sqrt(static_cast<double>(info.ne[0]));
    for (auto& x : v) x = static_cast<float>(is_norm ? 1.0 + 0.1 * normal() : scale * normal());
    std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
    tensors.push_back(make_f32_tensor(info.name, ne, std::move(v)));
  }
  Vocab vocab;
  vocab.model = "llama";
  vocab.pre = "default";
  for (int64_t i = 0; i < config.n_vocab; ++i) {
    vocab.tokens.push_back(i < 3 ? std::string(i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>") : "tok" + std::to_string(i));
    vocab.scores.push_back(0.0f);
    vocab.types.push_back(i == 0 ? 2 : i < 3 ? 3 : 1);
  }
  vocab.unk_id = 0, vocab.bos_id = 1, vocab.eos_id = 2;
  vocab.add_bos = true;
  return std::make_shared<MemoryModelSource>(config, std::move(vocab), std::move(tensors));
}

}  // namespace lowbit
