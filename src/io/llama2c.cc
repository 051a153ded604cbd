#include "io/llama2c.h"

#include <cstring>
#include <filesystem>

#include "model/vocab_loaders.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);

using u128 = unsigned __int128;

// Float counts of each part of the file, wide enough that no header (int32 fields) can overflow them.
struct Layout {
  u128 weights = 0;  // floats before the freq_cis tables (ending with rms_final)
  u128 freq = 0;     // floats in the two freq_cis tables
  u128 cls = 0;      // floats in a separate classifier
};

Layout layout_of(const Llama2cHeader& h) {
  const u128 dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers, vocab = h.vocab_size;
  const u128 head = dim / h.n_heads, kv_dim = head * h.n_kv_heads;
  Layout l;
  l.weights = vocab * dim + layers * dim * 2              // embedding, rms_att + rms_ffn
              + layers * dim * (2 * dim + 2 * kv_dim)     // wq, wo, wk, wv
              + layers * dim * hidden * 3 + dim;          // w1, w2, w3, rms_final
  l.freq = static_cast<u128>(h.seq_len) * head;           // 2 tables of seq_len * head/2
  l.cls = h.shared_classifier ? 0 : vocab * dim;
  return l;
}

std::string u128_string(u128 v) {
  return v > UINT64_MAX ? std::string("over 2^64") : std::to_string(static_cast<uint64_t>(v));
}

TensorInfo f32_info(std::string name, int64_t ne0, int64_t ne1 = 0) {
  TensorInfo t;
  t.name = std::move(name);
  t.type = DType::F32;
  t.n_dims = ne1 > 0 ? 2 : 1;
  t.ne[0] = ne0;
  if (ne1 > 0) t.ne[1] = ne1;
  return t;
}

class Llama2cSource : public ModelSource {
 public:
  Llama2cSource(const std::string& path, const std::string& tokenizer_path) : path_(path) {
    file_ = MappedFile::open(path);
    header_ = parse_llama2c_header(file_->bytes(), path);
    build_config();
    build_tensors();
    load_vocab(tokenizer_path);
  }

  const std::string& path() const override { return path_; }
  std::string format() const override { return "llama2c"; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }

  Tensor tensor(const std::string& name) const override {
    for (size_t i = 0; i < infos_.size(); ++i)
      if (infos_[i].name == name) {
        Tensor t;
        t.info = infos_[i];
        t.data = file_->data() + offsets_[i];
        t.owner = file_;
        return t;
      }
    fail(path_, "no tensor named '{}'", name);
  }

 private:
  void build_config() {
    const auto& h = header_;
    config_.arch = "llama";
    config_.name = fs::path(path_).stem().string();
    config_.n_vocab = h.vocab_size;
    config_.n_embd = h.dim;
    config_.n_layer = h.n_layers;
    config_.n_head = h.n_heads;
    config_.n_head_kv = h.n_kv_heads;
    config_.head_dim = h.dim / h.n_heads;
    config_.n_ff = h.hidden_dim;
    config_.n_ctx_train = h.seq_len;
    config_.norm_eps = 1e-5f;
    config_.rope.theta = 10000.0f;
    config_.tied_embeddings = h.shared_classifier;
    config_.validate(path_);
  }

  // Each llama2.c array holds one tensor per layer back to back; GGUF wants them layer by layer.
  void build_tensors() {
    const auto& h = header_;
    const int64_t dim = h.dim, hidden = h.hidden_dim, kv_dim = dim / h.n_heads * h.n_kv_heads;
    struct Array {
      const char* name;
      int64_t ne0, ne1;  // per layer; ne1 = 0 for vectors
      uint64_t offset = 0;
    };
    Array arrays[] = {
        {"attn_norm", dim, 0}, {"attn_q", dim, dim},       {"attn_k", dim, kv_dim}, {"attn_v", dim, kv_dim},
        {"attn_output", dim, dim}, {"ffn_norm", dim, 0}, {"ffn_gate", dim, hidden}, {"ffn_down", hidden, dim},
        {"ffn_up", dim, hidden},
    };
    uint64_t pos = kHeaderBytes;
    const uint64_t embd_offset = pos;
    pos += static_cast<uint64_t>(h.vocab_size) * dim * 4;
    for (auto& a : arrays) {
      a.offset = pos;
      pos += static_cast<uint64_t>(h.n_layers) * a.ne0 * std::max<int64_t>(a.ne1, 1) * 4;
    }
    const uint64_t final_offset = pos;
    pos += dim * 4;
    if (h.has_freq_cis) pos += static_cast<uint64_t>(layout_of(h).freq) * 4;
    add(f32_info("token_embd.weight", dim, h.vocab_size), embd_offset);
    for (int64_t l = 0; l < h.n_layers; ++l) {
      // llama2.c's file order is attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3; lay each layer out as HF does.
      for (const int i : {0, 1, 2, 3, 4, 5, 6, 8, 7}) {
        const auto& a = arrays[i];
        const uint64_t per_layer = static_cast<uint64_t>(a.ne0) * std::max<int64_t>(a.ne1, 1) * 4;
        add(f32_info(fmt::format("blk.{}.{}.weight", l, a.name), a.ne0, a.ne1), a.offset + l * per_layer);
      }
    }
    add(f32_info("output_norm.weight", dim), final_offset);
    if (!h.shared_classifier) add(f32_info("output.weight", dim, h.vocab_size), pos);
  }

  void add(TensorInfo info, uint64_t offset) {
    infos_.push_back(std::move(info));
    offsets_.push_back(offset);
  }

  void load_vocab(const std::string& tokenizer_path) {
    std::string tok = tokenizer_path;
    if (tok.empty()) {
      const auto dir = fs::path(path_).parent_path();
      for (const auto& candidate : {dir / "tokenizer.bin", dir / fmt::format("tok{}.bin", header_.vocab_size)})
        if (fs::exists(candidate)) {
          tok = candidate.string();
          break;
        }
      if (tok.empty()) return;  // no tokenizer: an empty vocabulary
    }
    check(fs::exists(tok), tok, "tokenizer not found");
    vocab_ = tok.ends_with(".model") ? load_sentencepiece_vocab(tok) : load_llama2c_vocab(tok, header_.vocab_size);
  }

  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  Llama2cHeader header_{};
  ModelConfig config_;
  Vocab vocab_;
  std::vector<TensorInfo> infos_;
  std::vector<uint64_t> offsets_;
};

}  // namespace

Llama2cHeader parse_llama2c_header(std::span<const uint8_t> file, const std::string& where) {
  check(file.size() >= kHeaderBytes, where, "file is {} bytes, too short for a llama2.c header", file.size());
  int32_t v[7];
  std::memcpy(v, file.data(), sizeof(v));
  Llama2cHeader h{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[5] > 0, false};
  check(h.vocab_size != 0 && h.vocab_size != INT32_MIN, where, "header vocab_size {} is invalid", h.vocab_size);
  if (!h.shared_classifier) h.vocab_size = -h.vocab_size;
  check(h.dim > 0 && h.hidden_dim > 0 && h.n_layers > 0 && h.n_heads > 0 && h.n_kv_heads > 0 && h.seq_len > 0, where,
        "header has a non-positive field (dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, seq_len {})",
        h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.seq_len);
  check(h.dim % h.n_heads == 0, where, "dim {} is not a multiple of n_heads {}", h.dim, h.n_heads);
  check(h.n_kv_heads <= h.n_heads && h.n_heads % h.n_kv_heads == 0, where,
        "n_heads {} is not a multiple of n_kv_heads {}", h.n_heads, h.n_kv_heads);
  check((h.dim / h.n_heads) % 2 == 0, where, "head size {} is odd", h.dim / h.n_heads);
  const Layout l = layout_of(h);
  const u128 size = file.size() - kHeaderBytes;
  const u128 without = (l.weights + l.cls) * 4, with = (l.weights + l.freq + l.cls) * 4;
  if (size == with) {
    h.has_freq_cis = true;
  } else {
    check(size == without, where,
          "file is {} bytes but its header (dim {}, hidden_dim {}, {} layers, {} heads, {} kv heads, vocab {}, "
          "seq_len {}) implies {} (or {} without the RoPE tables)",
          file.size(), h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len,
          u128_string(with + kHeaderBytes), u128_string(without + kHeaderBytes));
  }
  return h;
}

std::unique_ptr<ModelSource> open_llama2c_model(const std::string& path, const std::string& tokenizer_path) {
  return std::make_unique<Llama2cSource>(path, tokenizer_path);
}

}  // namespace lowbit
