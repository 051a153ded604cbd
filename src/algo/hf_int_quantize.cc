#include "algo/hf_int_quantize.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include "algo/rtn.h"
#include "io/converted_source.h"
#include "io/gptq_pack.h"
#include "io/hf_config.h"
#include "io/hf_names.h"
#include "io/hf_quant_config.h"
#include "io/hf_tokenizer_writer.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace lowbit {
namespace {

// The source with some tensors replaced (the already-quantized layers, dequantized).
class OverlaySource : public ModelSource {
 public:
  explicit OverlaySource(std::shared_ptr<const ModelSource> base) : base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  std::string format() const override { return base_->format(); }
  const ModelConfig& config() const override { return base_->config(); }
  const Vocab& vocab() const override { return base_->vocab(); }
  const std::vector<TensorInfo>& tensor_infos() const override { return base_->tensor_infos(); }
  Tensor tensor(const std::string& name) const override {
    auto it = replaced_.find(name);
    return it != replaced_.end() ? it->second : base_->tensor(name);
  }
  void replace(Tensor t) { replaced_[t.name()] = std::move(t); }

 private:
  std::shared_ptr<const ModelSource> base_;
  std::map<std::string, Tensor> replaced_;
};

const char* const kLinears[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

TensorInfo make_info(const std::string& name, DType type, std::vector<int64_t> ne) {
  TensorInfo t;
  t.name = name;
  t.type = type;
  t.n_dims = static_cast<int>(ne.size());
  for (size_t i = 0; i < ne.size(); ++i) t.ne[i] = ne[i];
  return t;
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// ---- progress files: one per finished layer, plus the options that produced them ----
std::string options_fingerprint(const ModelSource& src, const HfIntQuantizeOptions& o) {
  return fmt::format("lowbit-gptq-progress 1\nsource {}\nmethod {}\nbits {} group {} sym {} act_order {} static {} mse {}\n"
                     "damp {} step {} block {}\ncalib {} {} {} {}\n",
                     src.path(), o.method, o.config.bits, o.config.group_size, o.config.sym, o.config.desc_act,
                     o.config.static_groups, o.config.mse, o.gptq.damp_percent, o.gptq.damp_auto_increment,
                     o.gptq.block_size, o.calib.text_path, o.calib.nsamples, o.calib.seqlen, o.calib.seed);
}

template <typename T>
void put_vec(std::string& out, const std::vector<T>& v) {
  const uint64_t n = v.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <typename T>
std::vector<T> get_vec(const std::string& in, size_t& pos, const std::string& where) {
  uint64_t n = 0;
  check(in.size() - pos >= 8, where, "truncated progress file");
  std::memcpy(&n, in.data() + pos, 8);
  pos += 8;
  check(n <= (in.size() - pos) / sizeof(T), where, "truncated progress file");
  std::vector<T> v(static_cast<size_t>(n));
  std::memcpy(v.data(), in.data() + pos, v.size() * sizeof(T));
  pos += v.size() * sizeof(T);
  return v;
}

std::string serialize_layer(const std::vector<std::pair<std::string, GptqPacked>>& layers,
                            const std::vector<LinearReport>& reports) {
  std::string out;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& [name, p] = layers[i];
    put_vec(out, std::vector<char>(name.begin(), name.end()));
    put_vec(out, std::vector<int64_t>{p.bits, p.group_size, p.n_in, p.n_out, p.n_groups});
    put_vec(out, p.qweight);
    put_vec(out, p.qzeros);
    put_vec(out, p.scales);
    put_vec(out, p.g_idx);
    put_vec(out, std::vector<double>{reports[i].loss, reports[i].damp_percent, reports[i].seconds});
  }
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, const CalibrationOptions& o) {
  check(o.seqlen > 1 && o.nsamples > 0, "--calib", "need --nsamples > 0 and --seqlen > 1");
  check(static_cast<int64_t>(tokens.size()) > o.seqlen, o.text_path, "tokenizes to {} tokens; --seqlen {} needs more",
        tokens.size(), o.seqlen);
  uint64_t state = o.seed;
  auto next = [&] {  // SplitMix64: the same windows on every machine
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<std::vector<int32_t>> windows;
  const uint64_t range = tokens.size() - static_cast<size_t>(o.seqlen);
  for (int i = 0; i < o.nsamples; ++i) {
    const size_t start = static_cast<size_t>(next() % range);
    windows.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                         tokens.begin() + static_cast<std::ptrdiff_t>(start) + o.seqlen);
  }
  return windows;
}

std::vector<LinearReport> quantize_to_hf_gptq(std::shared_ptr<const ModelSource> source, const std::string& out_dir,
                                              const HfIntQuantizeOptions& o) {
  o.config.validate("--bits/--group-size");
  check(o.method == "rtn" || o.method == "gptq", "--method", "'{}' is not rtn or gptq", o.method);
  const ModelConfig& config = source->config();
  // The packed layout needs whole int32 words along both dimensions: refuse misfit layers before any work.
  for (int64_t layer = 0; layer < config.n_layer; ++layer)
    for (const char* linear : kLinears) {
      const std::string name = "blk." + std::to_string(layer) + "." + linear + ".weight";
      const TensorInfo& t = source->tensor_info(name);
      check((t.ne[0] * o.config.bits) % 32 == 0 && (t.ne[1] * o.config.bits) % 32 == 0, name,
            "shape {} cannot be packed at {} bits (GPTQ packs 32-bit words along both dimensions)", t.shape_string(),
            o.config.bits);
    }
  std::vector<std::vector<int32_t>> windows;
  if (o.method == "gptq") {
    check(!o.calib.text_path.empty(), "--calib", "GPTQ needs calibration text");
    Tokenizer tok(source->vocab());
    windows = calibration_windows(tok.encode(read_text_file(o.calib.text_path), false), o.calib);
  }
  auto overlay = std::make_shared<OverlaySource>(source);
  std::map<std::string, GptqPacked> packed;  // canonical weight name -> packed layer
  std::vector<LinearReport> reports;
  const auto format = o.config.sym ? GptqCheckpointFormat::kV1 : GptqCheckpointFormat::kV2;
  // The layer as the exported checkpoint holds it (fp16 scales), which is what later layers must see.
  auto overlay_from_packed = [&](const std::string& name, const GptqPacked& p) {
    Tensor dq = make_f32_tensor(name, {p.n_in, p.n_out}, unpack_gptq(p, format).dequantize());
    const int64_t heads = rope_permute_heads(config, name);
    overlay->replace(heads > 0 ? permute_rope_rows(dq, heads, /*to_gguf=*/true) : dq);
  };

  const std::string progress_dir = out_dir + "/.lowbit-progress";
  const std::string fingerprint = options_fingerprint(*source, o);
  int64_t first_layer = 0;
  if (o.resume && std::filesystem::exists(progress_dir + "/options")) {
    check(read_text_file(progress_dir + "/options") == fingerprint, progress_dir,
          "was made with other options or another source; remove it or run without --resume");
    for (; first_layer < config.n_layer; ++first_layer) {
      const std::string f = progress_dir + "/layer-" + std::to_string(first_layer) + ".bin";
      if (!std::filesystem::exists(f)) break;
      const std::string in = read_text_file(f);
      size_t pos = 0;
      while (pos < in.size()) {
        const auto name_chars = get_vec<char>(in, pos, f);
        const std::string name(name_chars.begin(), name_chars.end());
        const auto dims = get_vec<int64_t>(in, pos, f);
        check(dims.size() == 5, f, "corrupt progress file");
        GptqPacked p;
        p.bits = static_cast<int>(dims[0]), p.group_size = static_cast<int>(dims[1]);
        p.n_in = dims[2], p.n_out = dims[3], p.n_groups = dims[4];
        p.qweight = get_vec<int32_t>(in, pos, f);
        p.qzeros = get_vec<int32_t>(in, pos, f);
        p.scales = get_vec<uint16_t>(in, pos, f);
        p.g_idx = get_vec<int32_t>(in, pos, f);
        const auto r = get_vec<double>(in, pos, f);
        check(r.size() == 3 && source->has_tensor(name), f, "corrupt progress file");
        overlay_from_packed(name, p);
        packed[name] = std::move(p);
        reports.push_back({name, r[0], r[1], r[2]});
      }
    }
  } else {
    std::filesystem::remove_all(progress_dir);
  }
  std::filesystem::create_directories(progress_dir);
  write_file_atomic(progress_dir + "/options", fingerprint);

  Progress progress(o.method, config.n_layer);
  progress.set(first_layer);
  for (int64_t layer = first_layer; layer < config.n_layer; ++layer) {
    if (o.stop_after_layers >= 0 && layer >= o.stop_after_layers) fail("gptq", "stopped after {} layers (test hook)", layer);
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    std::vector<std::pair<std::string, GptqPacked>> layer_packed;
    std::vector<LinearReport> layer_reports;
    std::map<std::string, HessianAccumulator> hessians;
    if (o.method == "gptq") {
      LlamaModel model(overlay, {o.calib.seqlen, o.threads});
      model.set_matmul_observer([&](const Tensor& w, const float* x, int64_t n) {
        if (w.name().rfind(prefix, 0) != 0) return;
        auto it = hessians.try_emplace(w.name(), w.ne()[0]).first;
        it->second.add_batch(x, n);
      });
      std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
      for (const auto& w : windows) model.eval(w, 0, logits.data(), false);
    }
    for (const char* linear : kLinears) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string name = prefix + linear + ".weight";
      Tensor t = overlay->tensor(name);
      const int64_t heads = rope_permute_heads(config, name);
      // Quantize in Hugging Face row order (the exported layout); rows are output channels, so the Hessian
      // over the inputs is the same either way.
      std::vector<float> w = tensor_to_f32(t);
      Tensor w32 = make_f32_tensor(name, {t.ne()[0], t.ne()[1]}, w);
      if (heads > 0) w32 = permute_rope_rows(w32, heads, /*to_gguf=*/false);
      const float* wp = reinterpret_cast<const float*>(w32.data);
      const int64_t n_in = t.ne()[0], n_out = t.ne()[1];
      LinearReport r{name, 0, 0, 0};
      QuantizedLinear ql;
      if (o.method == "gptq") {
        auto h = hessians.find(name);
        check(h != hessians.end(), name, "no calibration activations reached this layer");
        GptqResult g = gptq_quantize(wp, n_out, n_in, h->second, o.config, o.gptq);
        ql = std::move(g.layer);
        r.loss = g.loss;
        r.damp_percent = g.damp_percent;
      } else {
        ql = rtn_quantize(wp, n_out, n_in, o.config);
      }
      // Symmetric layers fit GPTQ's v1 layout (zero - 1 stored); asymmetric ones can have a zero of 0, which only
      // v2 can store.
      GptqPacked p = pack_gptq(ql, format);
      overlay_from_packed(name, p);  // later layers see this one quantized
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      layer_packed.emplace_back(name, p);
      layer_reports.push_back(r);
      packed[name] = std::move(p);
    }
    write_file_atomic(progress_dir + "/layer-" + std::to_string(layer) + ".bin", serialize_layer(layer_packed, layer_reports));
    reports.insert(reports.end(), layer_reports.begin(), layer_reports.end());
    progress.advance();
  }
  progress.finish();

  // ---- export: HF names, packed linears, everything else in F16 ----
  std::filesystem::create_directories(out_dir);
  auto dense = convert_types(source, DType::F16, /*vectors_as_f32=*/false);
  std::vector<TensorInfo> infos;
  std::map<std::string, std::pair<std::string, std::vector<uint8_t>>> pending;  // hf name -> bytes (packed parts)
  std::map<std::string, std::string> dense_names;                                // hf name -> canonical
  for (const auto& info : dense->tensor_infos()) {
    auto it = packed.find(info.name);
    const std::string hf = gguf_to_hf_name(info.name);
    if (it == packed.end()) {
      TensorInfo t = info;
      t.name = hf;
      infos.push_back(t);
      dense_names[hf] = info.name;
      continue;
    }
    const GptqPacked& p = it->second;
    const std::string base = hf.substr(0, hf.size() - 7);  // drop ".weight"
    infos.push_back(make_info(base + ".qweight", DType::I32, {p.n_out, p.n_in * p.bits / 32}));
    infos.push_back(make_info(base + ".qzeros", DType::I32, {p.n_out * p.bits / 32, p.n_groups}));
    infos.push_back(make_info(base + ".scales", DType::F16, {p.n_out, p.n_groups}));
    infos.push_back(make_info(base + ".g_idx", DType::I32, {p.n_in}));
    pending[base + ".qweight"] = {info.name, as_bytes(p.qweight)};
    pending[base + ".qzeros"] = {info.name, as_bytes(p.qzeros)};
    pending[base + ".scales"] = {info.name, as_bytes(p.scales)};
    pending[base + ".g_idx"] = {info.name, as_bytes(p.g_idx)};
  }
  SafetensorsWriter writer(out_dir + "/model.safetensors", infos, {{"format", "pt"}});
  for (const auto& name : writer.write_order()) {
    if (auto it = pending.find(name); it != pending.end()) {
      writer.write(name, it->second.second);
    } else {
      // Dense tensors are written in HF row order (undo GGUF's q/k permutation).
      Tensor t = dense->tensor(dense_names.at(name));
      const int64_t heads = rope_permute_heads(config, t.name());
      if (heads > 0) t = permute_rope_rows(t, heads, /*to_gguf=*/false);
      writer.write(name, t.bytes());
    }
  }
  writer.finish();

  HfQuantConfig q;
  q.quant_method = "gptq";
  q.bits = o.config.bits;
  q.group_size = o.config.group_size;
  q.desc_act = o.config.desc_act;
  q.sym = o.config.sym;
  q.static_groups = o.config.static_groups;
  q.damp_percent = o.gptq.damp_percent;
  q.checkpoint_format = o.config.sym ? "gptq" : "gptq_v2";
  HfConfigExtras extras;
  extras.bos_token_id = source->vocab().bos_id;
  extras.eos_token_id = source->vocab().eos_id;
  auto cfg = nlohmann::ordered_json::parse(hf_config_json(config, extras));
  cfg["quantization_config"] = hf_quantization_config_block(q);
  write_file_atomic(out_dir + "/config.json", cfg.dump(2) + "\n");
  write_file_atomic(out_dir + "/quantize_config.json", hf_quantize_config_file(q));
  write_hf_tokenizer(source->vocab(), out_dir);
  std::filesystem::remove_all(progress_dir);  // the checkpoint is complete
  return reports;
}

}  // namespace lowbit
