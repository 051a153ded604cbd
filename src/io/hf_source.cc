#include "io/hf_source.h"

#include <filesystem>
#include <map>

#include "io/hf_config.h"
#include "io/hf_names.h"
#include "io/safetensors.h"
#include "model/vocab_loaders.h"
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
    set_ = SafetensorsSet::open(weights_path);
    map_tensors();
    vocab_ = load_hf_vocab(vocab_folder);
  }

  const std::string& path() const override { return path_; }
  std::string format() const override { return format_; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }

  Tensor tensor(const std::string& name) const override {
    const auto it = hf_name_.find(name);
    check(it != hf_name_.end(), path_, "no tensor named '{}'", name);
    Tensor t = set_->tensor(it->second);
    t.info = tensor_info(name);
    const int64_t heads = rope_permute_heads(config_, name);
    return heads > 0 ? permute_rope_rows(t, heads, /*to_gguf=*/true) : t;
  }

 private:
  // Renames every stored tensor, checks it against the tensors the config implies, and orders them by layer.
  void map_tensors() {
    std::map<std::string, TensorInfo> found;  // canonical name -> info (type and shape from the file)
    for (const auto& hf : set_->names()) {
      const auto name = hf_to_gguf_name(hf, set_->path());
      if (!name) continue;
      const auto [it, fresh] = hf_name_.emplace(*name, hf);
      check(fresh, set_->path(), "tensors '{}' and '{}' both map to '{}'", it->second, hf, *name);
      TensorInfo info = set_->entry(hf).info;
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
      found.erase(it);
    }
    check(n_missing == 0, set_->path(), "{} tensor(s) the config needs are missing: {}{}", n_missing, missing,
          n_missing > 4 ? ", ..." : "");
    check(found.empty(), set_->path(), "tensor '{}' is not expected by config.json ({} layers)",
          found.empty() ? "" : hf_name_.at(found.begin()->first), config_.n_layer);
  }

  std::string path_, format_;
  ModelConfig config_;
  Vocab vocab_;
  std::unique_ptr<SafetensorsSet> set_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, std::string> hf_name_;  // canonical -> stored name
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

}  // namespace lowbit
