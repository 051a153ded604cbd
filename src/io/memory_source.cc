#include "io/memory_source.h"

#include <fmt/format.h>

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

std::shared_ptr<MemoryModelSource> make_random_model(const ModelConfig& config, uint64_t seed, DType weight_type) {
  config.validate("make_random_model");
  std::mt19937_64 rng(seed);
  // Box-Muller on raw 64-bit draws keeps the values identical across standard libraries.
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  auto normal = [&] { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(2 * M_PI * uniform()); };
  std::vector<Tensor> tensors;
  for (const auto& info : llama_tensor_layout(config, weight_type)) {
    std::vector<float> v(static_cast<size_t>(info.n_elements()));
    const bool is_norm = info.n_dims == 1 && info.name.find("norm") != std::string::npos;
    const double scale = 1.0 / std::sqrt(static_cast<double>(info.ne[0]));
    for (auto& x : v) x = static_cast<float>(is_norm ? 1.0 + 0.1 * normal() : scale * normal());
    std::vector<uint8_t> bytes(info.n_bytes());
    quantize_rows(info.type, v.data(), bytes.data(), info.n_rows(), info.ne[0], nullptr, info.name);
    tensors.push_back(make_owned_tensor(info, std::move(bytes)));
  }
  Vocab vocab;
  vocab.model = "llama";
  vocab.pre = "default";
  // SentencePiece-like: <unk>, <s>, </s>, then (when there is room) the 256 byte tokens llama.cpp's loader looks
  // up, then filler tokens.
  const bool bytes = config.n_vocab >= 3 + 256;
  for (int64_t i = 0; i < config.n_vocab; ++i) {
    if (i < 3) vocab.tokens.push_back(i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
    else if (bytes && i < 3 + 256) vocab.tokens.push_back(fmt::format("<0x{:02X}>", i - 3));
    else vocab.tokens.push_back("tok" + std::to_string(i));
    vocab.scores.push_back(0.0f);
    vocab.types.push_back(i == 0 ? 2 : i < 3 ? 3 : (bytes && i < 3 + 256) ? 6 : 1);
  }
  vocab.unk_id = 0, vocab.bos_id = 1, vocab.eos_id = 2;
  vocab.add_bos = true;
  return std::make_shared<MemoryModelSource>(config, std::move(vocab), std::move(tensors));
}

}  // namespace lowbit

namespace lowbit {

std::unique_ptr<ModelSource> open_random_model(const std::string& spec) {
  // Llama shapes for speed measurements: weights drawn at random (seed 0), matrices F16.
  ModelConfig c;
  c.n_ctx_train = 2048;
  const std::string preset = spec.substr(spec.find(':') + 1);
  if (preset == "tiny") {
    c.n_vocab = 4096, c.n_embd = 256, c.n_layer = 4, c.n_ff = 512, c.n_head = 4, c.n_head_kv = 4;
  } else if (preset == "110M") {
    c.n_vocab = 32000, c.n_embd = 768, c.n_layer = 12, c.n_ff = 2048, c.n_head = 12, c.n_head_kv = 12;
  } else if (preset == "1B") {  // TinyLlama-1.1B's shapes
    c.n_vocab = 32000, c.n_embd = 2048, c.n_layer = 22, c.n_ff = 5632, c.n_head = 32, c.n_head_kv = 4;
  } else {
    fail(spec, "unknown random model preset '{}' (tiny, 110M or 1B)", preset);
  }
  auto m = make_random_model(c, 0, DType::F16);
  return std::make_unique<MemoryModelSource>(*m);
}

}  // namespace lowbit
