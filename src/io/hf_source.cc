#include "io/hf_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <map>
#include <set>

#include "io/gptq_pack.h"
#include "io/hf_config.h"
#include "io/hf_quant_config.h"
#include "io/hf_names.h"
#include "io/safetensors.h"
#include "model/vocab_loaders.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;

class HfSource : public ModelSource {
 public:
  HfSource(std::string path, std::string format, const std::string& config_path, const std::string& weights_path,
           const std::string& vocab_folder)
      : path_(std::move(path)), format_(std::move(format)) {
    config_ = load_hf_config(config_path);
    const std::string config_text = read_text_file(config_path);
    if (config_text.find("\"quantization_config\"") != std::string::npos) {
      quant_ = parse_hf_quant_config(config_text, config_path);
      check(quant_->quant_method == "gptq" || (quant_->quant_method == "awq" && quant_->awq_version == "gemm"),
            config_path, "{} checkpoints (version {}) are not readable (GPTQ and AWQ GEMM are)", quant_->quant_method,
            quant_->awq_version);
      check(quant_->quant_method != "awq" || quant_->bits == 4, config_path, "AWQ GEMM holds 4-bit weights, not {}",
            quant_->bits);
    }
    set_ = SafetensorsSet::open(weights_path);
    map_tensors();
    vocab_ = load_hf_vocab(vocab_folder);
  }

  const std::string& path() const override { return path_; }
  std::string format() const override { return format_; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }
  // A GPTQ/AWQ checkpoint says so (its linears are shown dequantized to F16).
  std::vector<std::pair<std::string, std::string>> metadata_strings() const override {
    if (!quant_) return {};
    const HfQuantConfig& q = *quant_;
    std::string layout = q.quant_method == "awq" ? "awq " + q.awq_version : q.checkpoint_format;
    return {{"quantization_config",
             fmt::format("{} {}-bit group {}{}{} ({} layout; linears read back dequantized to F16)", q.quant_method,
                         q.bits, q.group_size, q.desc_act ? " act-order" : "", q.sym ? " symmetric" : " zero-point",
                         layout)}};
  }

  Tensor tensor(const std::string& name) const override { return read(name, /*engine=*/false); }
  Tensor matmul_tensor(const std::string& name) const override { return read(name, /*engine=*/true); }

 private:
  // Renames every stored tensor, checks it against the tensors the config implies, and orders them by layer.
  // engine: a GPTQ/AWQ linear in its integer groups where the engine has a kernel for them.
  Tensor read(const std::string& name, bool engine) const {
    const auto it = hf_name_.find(name);
    check(it != hf_name_.end(), path_, "no tensor named '{}'", name);
    const TensorInfo& info = tensor_info(name);
    Tensor t;
    if (gptq_.count(name)) {
      const QuantizedLinear ql = unpack_linear(it->second, info);
      std::optional<Tensor> native = engine ? engine_tensor(ql, name) : std::nullopt;
      t = native ? std::move(*native) : dequantized(ql, info);
    } else {
      t = set_->tensor(it->second);
      t.info = info;
    }
    const int64_t heads = rope_permute_heads(config_, name);
    return heads > 0 ? permute_rope_rows(t, heads, /*to_gguf=*/true) : t;
  }

  static Tensor dequantized(const QuantizedLinear& ql, const TensorInfo& info) {
    const std::vector<float> w = ql.dequantize();
    TensorInfo out = info;
    out.type = DType::F16;
    std::vector<uint8_t> bytes(out.n_bytes());
    quantize_rows(DType::F16, w.data(), bytes.data(), out.n_rows(), out.ne[0]);
    return make_owned_tensor(out, std::move(bytes));
  }

  // A GPTQ/AWQ linear (prefix.qweight/.qzeros/.scales/.g_idx), unpacked and checked.
  QuantizedLinear unpack_linear(const std::string& prefix, const TensorInfo& info) const {
    GptqPacked p;
    p.bits = quant_->bits;
    p.group_size = quant_->group_size;
    p.n_in = info.ne[0];
    p.n_out = info.ne[1];
    const int64_t group = p.group_size < 0 ? p.n_in : p.group_size;
    p.n_groups = (p.n_in + group - 1) / group;
    auto read_i32 = [&](const std::string& n, std::vector<int32_t>& out, int64_t count) {
      const Tensor t = set_->tensor(prefix + n);
      check(t.type() == DType::I32 && t.info.n_elements() == count, set_->path(), "'{}{}' has the wrong type or size",
            prefix, n);
      out.resize(static_cast<size_t>(count));
      std::memcpy(out.data(), t.data, out.size() * 4);
    };
    read_i32(".qweight", p.qweight, p.n_in * p.bits / 32 * p.n_out);
    read_i32(".qzeros", p.qzeros, p.n_groups * p.n_out * p.bits / 32);
    const auto& names = set_->names();
    if (std::find(names.begin(), names.end(), prefix + ".g_idx") != names.end()) read_i32(".g_idx", p.g_idx, p.n_in);
    const Tensor sc = set_->tensor(prefix + ".scales");
    check(sc.type() == DType::F16 && sc.info.n_elements() == p.n_groups * p.n_out, set_->path(),
          "'{}.scales' has the wrong type or size", prefix);
    p.scales.resize(static_cast<size_t>(p.n_groups * p.n_out));
    std::memcpy(p.scales.data(), sc.data, p.scales.size() * 2);
    QuantizedLinear ql;
    if (quant_->quant_method == "awq") {
      AwqPacked a;
      a.bits = p.bits, a.group_size = static_cast<int>(group), a.n_in = p.n_in, a.n_out = p.n_out;
      a.n_groups = p.n_groups;
      a.qweight = std::move(p.qweight), a.qzeros = std::move(p.qzeros), a.scales = std::move(p.scales);
      ql = unpack_awq_gemm(a);
    } else {
      ql = unpack_gptq(p, quant_->checkpoint_format == "gptq_v2" ? GptqCheckpointFormat::kV2 : GptqCheckpointFormat::kV1);
    }
    return ql;
  }

  void map_tensors() {
    std::map<std::string, TensorInfo> found;  // canonical name -> info (type and shape from the file)
    for (const auto& stored : set_->names()) {
      std::string hf = stored;
      bool packed = false;
      if (quant_) {
        auto ends = [&](const std::string& suffix) {
          return hf.size() > suffix.size() && hf.compare(hf.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        if (ends(".qzeros") || ends(".scales") || ends(".g_idx")) continue;  // read with their .qweight
        if (ends(".qweight")) {
          hf = hf.substr(0, hf.size() - 8) + ".weight";
          packed = true;
        }
      }
      const auto name = hf_to_gguf_name(hf, set_->path());
      if (!name) continue;
      const auto [it, fresh] = hf_name_.emplace(*name, packed ? stored.substr(0, stored.size() - 8) : hf);
      check(fresh, set_->path(), "tensors '{}' and '{}' both map to '{}'", it->second, hf, *name);
      TensorInfo info = set_->entry(stored).info;
      if (packed) {  // GPTQ qweight [n_in * bits / 32, n_out], AWQ [n_in, n_out * bits / 32]: an F16 [n_out, n_in]
        gptq_.insert(*name);
        check(info.type == DType::I32 && info.n_dims == 2, set_->path(), "'{}' is not a 2-D int32 tensor", stored);
        if (quant_->quant_method == "awq") info.ne = {info.ne[1], info.ne[0] * 32 / quant_->bits, 1, 1};
        else info.ne = {info.ne[1] * 32 / quant_->bits, info.ne[0], 1, 1};
        info.type = DType::F16;
      }
      check(type_traits(info.type).is_float, set_->path(), "tensor '{}' has type {}; weights must be floating point",
            hf, dtype_name(info.type));
      info.name = *name;
      found[*name] = info;
    }
    std::vector<TensorInfo> expected = expected_tensors(config_);
    if (config_.tied_embeddings && found.count("output.weight")) {
      auto out = expected.front();  // a tied model that still stores lm_head: keep it, same shape as the embedding
      out.name = "output.weight";
      expected.push_back(out);
    }
    std::set<std::string> wanted;
    for (const auto& want : expected) wanted.insert(want.name);
    for (const auto& [name, info] : found)
      check(wanted.count(name) != 0, set_->path(), "tensor '{}' is not expected by config.json ({} layers)",
            hf_name_.at(name), config_.n_layer);
    std::string missing;
    int n_missing = 0;
    for (const auto& want : expected) {
      const auto it = found.find(want.name);
      if (it == found.end()) {
        if (n_missing++ < 4) missing += (missing.empty() ? "" : ", ") + gguf_to_hf_name(want.name);
        continue;
      }
      check(it->second.n_dims == want.n_dims && it->second.ne == want.ne, set_->path(),
            "tensor '{}' has shape {} but config.json implies {}", hf_name_.at(want.name), it->second.shape_string(),
            want.shape_string());
      infos_.push_back(it->second);
    }
    check(n_missing == 0, set_->path(), "{} tensor(s) the config needs are missing: {}{}", n_missing, missing,
          n_missing > 4 ? ", ..." : "");
  }

  std::string path_, format_;
  ModelConfig config_;
  Vocab vocab_;
  std::unique_ptr<SafetensorsSet> set_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, std::string> hf_name_;  // canonical -> stored name (GPTQ: the prefix of .qweight)
  std::optional<HfQuantConfig> quant_;
  std::set<std::string> gptq_;  // canonical names stored packed
};

}  // namespace

std::unique_ptr<ModelSource> open_hf_model(const std::string& folder) {
  check(fs::is_directory(folder), folder, "not a folder");
  const auto dir = fs::path(folder);
  std::string weights;
  if (fs::exists(dir / "model.safetensors.index.json")) {
    weights = (dir / "model.safetensors.index.json").string();
  } else if (fs::exists(dir / "model.safetensors")) {
    weights = (dir / "model.safetensors").string();
  } else {
    fail(folder, "no model.safetensors or model.safetensors.index.json (PyTorch .bin checkpoints are not read)");
  }
  return std::make_unique<HfSource>(folder, "hf", (dir / "config.json").string(), weights, folder);
}

std::unique_ptr<ModelSource> open_safetensors_model(const std::string& file) {
  const auto dir = fs::path(file).parent_path();
  const auto config = (dir.empty() ? fs::path("config.json") : dir / "config.json").string();
  check(fs::exists(config), file, "a lone .safetensors file needs config.json beside it ({} not found)", config);
  return std::make_unique<HfSource>(file, "safetensors", config, file, dir.empty() ? "." : dir.string());
}

std::vector<std::string> write_hf_model(const ModelSource& source, const std::string& folder,
                                        const SafetensorsWriteOptions& options) {
  const auto& config = source.config();
  std::map<std::string, TensorInfo> by_hf_name;  // HF name -> info under its canonical name
  for (const auto& info : source.tensor_infos()) {
    if (info.name == "rope_freqs.weight") continue;  // llama.cpp's llama3 rope table: HF derives it from config.json
    check(!type_traits(info.type).is_quantized, info.name, "type {} cannot be written to safetensors",
          dtype_name(info.type));
    by_hf_name[gguf_to_hf_name(info.name)] = info;
  }
  // Declared in state_dict order so shards split where transformers would split them.
  std::vector<std::string> hf_names;
  for (const auto& [hf, info] : by_hf_name) hf_names.push_back(hf);
  sort_hf_state_dict_order(hf_names);
  std::vector<TensorInfo> infos;
  for (const auto& hf : hf_names) {
    infos.push_back(by_hf_name.at(hf));
    infos.back().name = hf;
  }
  fs::create_directories(folder);
  HfConfigExtras extras;
  const auto& v = source.vocab();
  extras.bos_token_id = v.bos_id;
  extras.eos_token_id = v.eos_id;
  if (!infos.empty()) extras.torch_dtype = infos.front().type == DType::BF16 ? "bfloat16"
                                         : infos.front().type == DType::F32  ? "float32"
                                                                             : "float16";
  SafetensorsWriter writer((fs::path(folder) / "model.safetensors").string(), infos, {{"format", "pt"}}, options);
  for (const auto& hf : writer.write_order()) {
    const auto& name = by_hf_name.at(hf).name;
    Tensor t = source.tensor(name);
    const int64_t heads = rope_permute_heads(config, name);
    if (heads > 0) t = permute_rope_rows(t, heads, /*to_gguf=*/false);
    writer.write(hf, t.bytes());
  }
  auto paths = writer.finish();
  const auto config_path = (fs::path(folder) / "config.json").string();
  write_file_atomic(config_path, hf_config_json(config, extras));
  paths.push_back(config_path);
  return paths;
}

}  // namespace lowbit
