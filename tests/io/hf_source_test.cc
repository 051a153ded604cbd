#include "io/hf_source.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "io/hf_config.h"
#include "io/hf_names.h"
#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "support/temp_files.h"
#include "util/error.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const std::string kGutenberg = std::string(LOWBIT_SOURCE_DIR) + "/models/tiny-gutenberg";



std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// An in-memory model: every expected tensor of `config` filled with distinct F32 values.
class MemorySource : public ModelSource {
 public:
  explicit MemorySource(ModelConfig config) : config_(std::move(config)) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1, 1);
    infos_ = expected_tensors(config_);
    for (const auto& info : infos_) {
      std::vector<float> v(info.n_elements());
      for (auto& x : v) x = dist(rng);
      std::vector<int64_t> ne(info.ne.begin(), info.ne.begin() + info.n_dims);
      tensors_.push_back(make_f32_tensor(info.name, ne, v));
    }
  }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const ModelConfig& config() const override { return config_; }
  const Vocab& vocab() const override { return vocab_; }
  const std::vector<TensorInfo>& tensor_infos() const override { return infos_; }
  Tensor tensor(const std::string& name) const override {
    for (const auto& t : tensors_)
      if (t.name() == name) return t;
    fail(path_, "no tensor '{}'", name);
  }

 private:
  std::string path_ = "memory";
  ModelConfig config_;
  Vocab vocab_;
  std::vector<TensorInfo> infos_;
  std::vector<Tensor> tensors_;
};

ModelConfig tiny_config(const std::string& arch) {
  ModelConfig c;
  c.arch = arch;
  c.n_vocab = 32;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 4;
  c.n_ff = 24;
  c.n_ctx_train = 64;
  c.rope.neox = arch != "llama";
  c.attn_qkv_bias = arch == "qwen2";
  c.attn_qk_norm = arch == "qwen3";
  return c;
}

void expect_same_tensors(const ModelSource& a, const ModelSource& b) {
  ASSERT_EQ(a.tensor_infos().size(), b.tensor_infos().size());
  for (size_t i = 0; i < a.tensor_infos().size(); ++i) {
    const auto& name = a.tensor_infos()[i].name;
    ASSERT_EQ(name, b.tensor_infos()[i].name);
    const auto ta = a.tensor(name), tb = b.tensor(name);
    ASSERT_EQ(ta.info.ne, tb.info.ne) << name;
    ASSERT_EQ(ta.type(), tb.type()) << name;
    EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.bytes().size()), 0) << name;
  }
}

TEST(HfNames, MapsBothWays) {
  EXPECT_EQ(*hf_to_gguf_name("model.layers.12.self_attn.q_proj.weight", "f"), "blk.12.attn_q.weight");
  EXPECT_EQ(*hf_to_gguf_name("model.layers.0.self_attn.k_norm.weight", "f"), "blk.0.attn_k_norm.weight");
  EXPECT_EQ(*hf_to_gguf_name("model.layers.3.self_attn.v_proj.bias", "f"), "blk.3.attn_v.bias");
  EXPECT_EQ(*hf_to_gguf_name("model.layers.3.post_attention_layernorm.weight", "f"), "blk.3.ffn_norm.weight");
  EXPECT_EQ(*hf_to_gguf_name("lm_head.weight", "f"), "output.weight");
  EXPECT_FALSE(hf_to_gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq", "f").has_value());
  EXPECT_EQ(gguf_to_hf_name("blk.7.ffn_down.weight"), "model.layers.7.mlp.down_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("output_norm.weight"), "model.norm.weight");
  for (const char* bad : {"model.layers.01.mlp.up_proj.weight", "model.layers.x.mlp.up_proj.weight",
                          "model.layers.1.mlp.fc1.weight", "transformer.h.0.attn.weight", "model.layers.1."}) {
    const auto msg = error_of([&] { hf_to_gguf_name(bad, "f.safetensors"); });
    EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
  }
  EXPECT_THROW(gguf_to_hf_name("blk.0.attn_qkv.weight"), Error);
}

TEST(HfNames, StateDictOrder) {
  std::vector<std::string> names = {"lm_head.weight",
                                    "model.layers.10.input_layernorm.weight",
                                    "model.layers.2.mlp.down_proj.weight",
                                    "model.norm.weight",
                                    "model.layers.2.self_attn.k_proj.bias",
                                    "model.layers.2.input_layernorm.weight",
                                    "model.embed_tokens.weight",
                                    "model.layers.2.self_attn.q_proj.weight"};
  sort_hf_state_dict_order(names);
  const std::vector<std::string> want = {"model.embed_tokens.weight",
                                         "model.layers.2.self_attn.q_proj.weight",
                                         "model.layers.2.self_attn.k_proj.bias",
                                         "model.layers.2.mlp.down_proj.weight",
                                         "model.layers.2.input_layernorm.weight",
                                         "model.layers.10.input_layernorm.weight",
                                         "model.norm.weight",
                                         "lm_head.weight"};
  EXPECT_EQ(names, want);
}

// convert_hf_to_gguf.py's permute: reshape(n_head, 2, d/2, ...).swapaxes(1, 2). With 2 heads of 4 rows, GGUF
// row order is HF rows 0 2 1 3 | 4 6 5 7.
TEST(HfNames, RopePermutationMatchesLlamaCpp) {
  std::vector<float> rows;
  for (int r = 0; r < 8; ++r) rows.insert(rows.end(), {float(r), float(r) + 0.5f});
  const auto hf = make_f32_tensor("q", {2, 8}, rows);
  const auto gguf = tensor_to_f32(permute_rope_rows(hf, 2, true));
  const float order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(gguf[2 * r], order[r]);
    EXPECT_EQ(gguf[2 * r + 1], order[r] + 0.5f);
  }
  const auto back = tensor_to_f32(permute_rope_rows(make_f32_tensor("q", {2, 8}, gguf), 2, false));
  EXPECT_EQ(back, rows);
  EXPECT_THROW(permute_rope_rows(hf, 3, true), Error);
  const auto cfg = tiny_config("llama");
  EXPECT_EQ(rope_permute_heads(cfg, "blk.1.attn_q.weight"), 4);
  EXPECT_EQ(rope_permute_heads(cfg, "blk.1.attn_k.weight"), 2);
  EXPECT_EQ(rope_permute_heads(cfg, "blk.1.attn_v.weight"), 0);
  EXPECT_EQ(rope_permute_heads(tiny_config("qwen2"), "blk.1.attn_q.weight"), 0);
}

TEST(HfSource, GutenbergFolder) {
  auto m = open_hf_model(kGutenberg);
  EXPECT_EQ(m->format(), "hf");
  EXPECT_EQ(m->config().n_embd, 256);
  EXPECT_TRUE(m->config().tied_embeddings);
  EXPECT_EQ(m->tensor_infos().front().name, "token_embd.weight");
  EXPECT_EQ(m->tensor_infos()[1].name, "blk.0.attn_norm.weight");
  EXPECT_EQ(m->tensor_infos().back().name, "output_norm.weight");
  EXPECT_EQ(m->tensor_infos().size(), 1u + 4 * 9 + 1);
  // Unpermuted tensors are views into the file; permuted ones are owned copies with the same type.
  const auto st = SafetensorsSet::open(kGutenberg + "/model.safetensors");
  const uint8_t* base = m->tensor("token_embd.weight").data;
  const uint8_t* st_base = st->tensor("model.embed_tokens.weight").data;
  EXPECT_EQ(m->tensor("blk.1.ffn_up.weight").data - base,
            st->tensor("model.layers.1.mlp.up_proj.weight").data - st_base);
  const auto q = m->tensor("blk.1.attn_q.weight");
  EXPECT_EQ(q.type(), DType::F16);
  EXPECT_NE(q.data - base, st->tensor("model.layers.1.self_attn.q_proj.weight").data - st_base);
  EXPECT_NE(std::memcmp(q.data, st->tensor("model.layers.1.self_attn.q_proj.weight").data, q.bytes().size()), 0);
  auto lone = open_safetensors_model(kGutenberg + "/model.safetensors");
  EXPECT_EQ(lone->format(), "safetensors");
  expect_same_tensors(*m, *lone);
}

// Exporting the folder gives back the HF file byte for byte: names, shapes, the inverse permutation and the
// safetensors layout all match what transformers wrote.
TEST(HfSource, ExportReproducesGutenbergBytes) {
  auto m = open_hf_model(kGutenberg);
  const auto dir = test::fresh_temp_dir("hf_export");
  write_hf_model(*m, dir.string());
  EXPECT_EQ(test::read_file_bytes((dir / "model.safetensors").string()),
            test::read_file_bytes(kGutenberg + "/model.safetensors"));
  const auto back = load_hf_config(dir.string());
  EXPECT_EQ(back.n_embd, 256);
  EXPECT_TRUE(back.tied_embeddings);
  fs::remove_all(dir);
}

TEST(HfSource, RoundTripsEveryArchitectureSharded) {
  for (const char* arch : {"llama", "qwen2", "qwen3"}) {
    MemorySource src(tiny_config(arch));
    const auto dir = test::fresh_temp_dir(std::string("hf_rt_") + arch);
    write_hf_model(src, dir.string(), {.max_shard_bytes = 8000});
    ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json")) << arch;
    auto back = open_hf_model(dir.string());
    EXPECT_EQ(back->config().arch, arch);
    expect_same_tensors(src, *back);
    // Only Llama's q/k are permuted on disk.
    const auto st = SafetensorsSet::open((dir / "model.safetensors.index.json").string());
    const auto disk_q = st->tensor("model.layers.1.self_attn.q_proj.weight");
    const bool same = std::memcmp(disk_q.data, src.tensor("blk.1.attn_q.weight").data, disk_q.bytes().size()) == 0;
    EXPECT_EQ(same, std::string(arch) != "llama") << arch;
    fs::remove_all(dir);
  }
}

TEST(HfSource, RefusesBrokenFolders) {
  MemorySource src(tiny_config("qwen2"));
  const auto dir = test::fresh_temp_dir("hf_broken");
  write_hf_model(src, dir.string());
  const auto st_path = (dir / "model.safetensors").string();
  fs::copy_file(st_path, dir / "good.safetensors");
  auto write_without = [&](const std::string& drop, const std::string& rename_to, bool reshape) {
    auto set = SafetensorsSet::open((dir / "good.safetensors").string());
    std::vector<TensorInfo> infos;
    for (const auto& n : set->names()) {
      if (n == drop && rename_to.empty() && !reshape) continue;
      auto info = set->entry(n).info;
      if (n == drop && !rename_to.empty()) info.name = rename_to;
      if (n == drop && reshape) std::swap(info.ne[0], info.ne[1]);
      infos.push_back(info);
    }
    SafetensorsWriter w(st_path, infos, {});
    for (const auto& n : w.write_order()) {
      const auto& orig = n == rename_to ? drop : n;
      w.write(n, set->tensor(orig).bytes());
    }
    w.finish();
    return error_of([&] { open_hf_model(dir.string()); });
  };
  struct Case {
    const char* drop;
    const char* rename_to;
    bool reshape;
    const char* expect;
  };
  const Case cases[] = {
      {"model.layers.1.self_attn.k_proj.bias", "", false, "missing: model.layers.1.self_attn.k_proj.bias"},
      {"model.layers.1.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight", false,
       "'model.layers.2.mlp.up_proj.weight' is not expected"},
      {"model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.fc9.weight", false,
       "'model.layers.1.mlp.fc9.weight' is not a known"},
      {"model.layers.0.mlp.down_proj.weight", "", true,
       "'model.layers.0.mlp.down_proj.weight' has shape [16, 24] but config.json implies [24, 16]"},
  };
  for (const auto& c : cases) {
    const auto msg = write_without(c.drop, c.rename_to, c.reshape);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }
  fs::remove(dir / "config.json");
  EXPECT_NE(error_of([&] { open_hf_model(dir.string()); }).find("config.json"), std::string::npos);
  EXPECT_NE(error_of([&] { open_safetensors_model((dir / "good.safetensors").string()); }).find("needs config.json"),
            std::string::npos);
  fs::remove_all(dir);
  EXPECT_NE(error_of([&] { open_hf_model(dir.string()); }).find("not a folder"), std::string::npos);
}

TEST(HfSource, MissingShardIsNamed) {
  const std::string mistral = std::string(LOWBIT_SHARED_DATA) + "/hf-configs/mistral-7b-v0.1";
  if (!fs::exists(mistral)) GTEST_SKIP() << "shared fixture absent: " << mistral;
  const auto msg = error_of([&] { open_hf_model(mistral); });
  EXPECT_NE(msg.find("model-0000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is missing"), std::string::npos) << msg;
}

}  // namespace
}  // namespace lowbit
