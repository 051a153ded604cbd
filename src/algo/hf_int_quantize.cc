#include "algo/hf_int_quantize.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>

#include "algo/awq_model.h"
#include "algo/gguf_quantize.h"
#include "algo/rtn.h"
#include "core/float_formats.h"
#include "io/converted_source.h"
#include "io/gptq_pack.h"
#include "io/hf_config.h"
#include "io/hf_names.h"
#include "io/hf_quant_config.h"
#include "io/hf_tokenizer_writer.h"
#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const char* const kLinears[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

TensorInfo make_info(const std::string& name, DType type, std::vector<int64_t> ne) {
  TensorInfo t;
  t.name = name;
  t.type = type;
  t.n_dims = static_cast<int>(ne.size());
  for (size_t i = 0; i < ne.size(); ++i) t.ne[i] = ne[i];
  return t;
}

std::string fingerprint(const HfIntQuantizeOptions& o, const std::string& format) {
  return fmt::format("method {} format {}\nbits {} group {} sym {} act_order {} static {} mse {} true_seq {}\n"
                     "damp {} step {} block {}\nawq grid {} duo {} clip {} tokens {}\ncalib {} {} {} {}\n",
                     o.method, format, o.config.bits, o.config.group_size, o.config.sym, o.config.desc_act,
                     o.config.static_groups, o.config.mse, o.true_sequential, o.gptq.damp_percent,
                     o.gptq.damp_auto_increment, o.gptq.block_size, o.awq.n_grid, o.awq.duo_scaling, o.awq.clip,
                     o.awq_max_tokens, o.calib.text_path, o.calib.nsamples, o.calib.seqlen, o.calib.seed);
}

// Weights of a linear in Hugging Face row order (the exported layout; q/k rows un-permuted), as float.
std::vector<float> hf_order(const ModelConfig& config, const std::string& name, std::vector<float> w, int64_t n_in,
                            int64_t n_out, bool to_gguf = false) {
  const int64_t heads = rope_permute_heads(config, name);
  if (heads <= 0) return w;
  return tensor_to_f32(permute_rope_rows(make_f32_tensor(name, {n_in, n_out}, std::move(w)), heads, to_gguf));
}

// QuantizedLinear <-> progress blobs.
void save_linear(LayerBlobs& blobs, const std::string& name, const QuantizedLinear& ql, const LinearReport& r) {
  blobs.emplace_back("dims:" + name, to_blob(std::vector<int64_t>{ql.n_in, ql.n_out, ql.bits, ql.group_size, ql.sym}));
  blobs.emplace_back("q:" + name, ql.q);
  blobs.emplace_back("scales:" + name, to_blob(ql.scales));
  blobs.emplace_back("zeros:" + name, to_blob(ql.zeros));
  blobs.emplace_back("g_idx:" + name, to_blob(ql.g_idx));
  blobs.emplace_back("report:" + name, to_blob(std::vector<double>{r.loss, r.damp_percent, r.seconds, r.error, r.rtn_error}));
}

// The AWQ scales applied to a linear's inputs (rows = false) or folded into its rows (rows = true), if any.
const std::vector<float>* awq_group_scales(const AwqLayerScaling& s, int64_t layer, const std::string& linear,
                                           bool rows) {
  static const std::map<std::string, std::string> input_group = {
      {"attn_q", "attn_q"}, {"attn_k", "attn_q"}, {"attn_v", "attn_q"}, {"attn_output", "attn_output"},
      {"ffn_gate", "ffn_gate"}, {"ffn_up", "ffn_gate"}, {"ffn_down", "ffn_down"}};
  static const std::map<std::string, std::string> row_group = {{"attn_v", "attn_output"}, {"ffn_up", "ffn_down"}};
  const auto& table = rows ? row_group : input_group;
  auto g = table.find(linear);
  if (g == table.end()) return nullptr;
  auto it = s.scales.find("blk." + std::to_string(layer) + "." + g->second + ".weight");
  return it == s.scales.end() ? nullptr : &it->second.scales;
}

// What the export needs, kept as the packed bytes (bits/8 bytes per weight) rather than the unpacked layers.
struct Results {
  std::map<std::string, std::vector<std::pair<TensorInfo, std::vector<uint8_t>>>> packed;  // GGUF name -> HF parts
  std::map<std::string, std::vector<float>> norms;  // AWQ: rescaled norm vectors
  std::vector<LinearReport> reports;
};

}  // namespace

std::vector<LinearReport> quantize_to_hf(std::shared_ptr<const ModelSource> source, const std::string& out_dir,
                                         const HfIntQuantizeOptions& o) {
  o.config.validate("--bits/--group-size");
  check(o.method == "rtn" || o.method == "gptq" || o.method == "awq", "--method", "'{}' is not rtn, gptq or awq",
        o.method);
  const std::string format = o.format.empty() ? (o.method == "awq" ? "awq" : "gptq") : o.format;
  check(format == "gptq" || format == "awq", "--format", "'{}' is not gptq or awq", format);
  check(format != "awq" || (o.config.bits == 4 && !o.config.desc_act), "--format awq",
        "AWQ's GEMM layout holds 4-bit weights without act-order only");
  check(o.method != "awq" || !o.config.desc_act, "--act-order", "AWQ has no act-order");
  const ModelConfig& config = source->config();
  // The packed layouts need whole int32 words: refuse misfit layers before any work.
  for (int64_t layer = 0; layer < config.n_layer; ++layer)
    for (const char* linear : kLinears) {
      const std::string name = "blk." + std::to_string(layer) + "." + linear + ".weight";
      const TensorInfo& t = source->tensor_info(name);
      const bool fits = format == "gptq" ? (t.ne[0] * o.config.bits) % 32 == 0 && (t.ne[1] * o.config.bits) % 32 == 0
                                         : t.ne[1] % 8 == 0 && t.ne[0] % o.config.group_len(t.ne[0]) == 0;
      check(fits, name, "shape {} cannot be packed at {} bits in the {} layout (32-bit words)", t.shape_string(),
            o.config.bits, format);
    }

  auto overlay = std::make_shared<OverlaySource>(source);
  Results results;
  // The layer as the checkpoint holds it (fp16 scales) is what later layers see.
  const auto gptq_layout = o.config.sym ? GptqCheckpointFormat::kV1 : GptqCheckpointFormat::kV2;
  auto install = [&](const std::string& name, QuantizedLinear ql, const LinearReport& r) {
    for (float& s : ql.scales) s = f16_to_f32(f32_to_f16(s));
    const int64_t n_in = ql.n_in, n_out = ql.n_out;
    overlay->replace(make_f32_tensor(name, {n_in, n_out}, hf_order(config, name, ql.dequantize(), n_in, n_out, true)));
    const std::string hf = gguf_to_hf_name(name);
    const std::string base = hf.substr(0, hf.size() - 7);  // drop ".weight"
    auto& parts = results.packed[name];
    auto add = [&](const std::string& suffix, DType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
      parts.emplace_back(make_info(base + suffix, type, std::move(ne)), std::move(bytes));
    };
    if (format == "gptq") {
      const GptqPacked p = pack_gptq(ql, gptq_layout);
      add(".qweight", DType::I32, {p.n_out, p.n_in * p.bits / 32}, to_blob(p.qweight));
      add(".qzeros", DType::I32, {p.n_out * p.bits / 32, p.n_groups}, to_blob(p.qzeros));
      add(".scales", DType::F16, {p.n_out, p.n_groups}, to_blob(p.scales));
      add(".g_idx", DType::I32, {p.n_in}, to_blob(p.g_idx));
    } else {
      const AwqPacked p = pack_awq_gemm(ql);
      add(".qweight", DType::I32, {p.n_out / 8, p.n_in}, to_blob(p.qweight));
      add(".qzeros", DType::I32, {p.n_out / 8, p.n_groups}, to_blob(p.qzeros));
      add(".scales", DType::F16, {p.n_out, p.n_groups}, to_blob(p.scales));
    }
    results.reports.push_back(r);
  };
  auto install_norm = [&](const std::string& name, std::vector<float> v) {
    overlay->replace(make_f32_tensor(name, {static_cast<int64_t>(v.size())}, v));
    results.norms[name] = std::move(v);
  };

  LayerwiseRun run;
  run.source = source;
  run.overlay = overlay;
  run.calib = o.calib;
  run.needs_calibration = o.method != "rtn";
  run.fingerprint = fingerprint(o, format);
  run.progress_dir = out_dir + "/.lowbit-progress";
  run.resume = o.resume;
  run.threads = o.threads;
  run.stop_after_layers = o.stop_after_layers;
  run.restore_layer = [&](int64_t, const LayerBlobs& saved) {
    std::map<std::string, const std::vector<uint8_t>*> by;
    for (const auto& [k, v] : saved) by[k] = &v;
    auto get = [&](const std::string& k) -> const std::vector<uint8_t>& {
      auto it = by.find(k);
      check(it != by.end(), run.progress_dir, "corrupt progress file (no {})", k);
      return *it->second;
    };
    for (const auto& [key, bytes] : saved) {
      if (key.rfind("norm:", 0) == 0) {
        const std::string name = key.substr(5);
        install_norm(name, saved_norm(*source, name, bytes, run.progress_dir));
      }
      if (key.rfind("dims:", 0) != 0) continue;
      const std::string name = key.substr(5);
      const auto dims = from_blob<int64_t>(bytes, run.progress_dir);
      check(dims.size() == 5 && source->has_tensor(name), run.progress_dir, "corrupt progress file ({})", key);
      QuantizedLinear ql;
      ql.n_in = dims[0], ql.n_out = dims[1], ql.bits = static_cast<int>(dims[2]);
      ql.group_size = static_cast<int>(dims[3]), ql.sym = dims[4] != 0;
      ql.q = get("q:" + name);
      ql.scales = from_blob<float>(get("scales:" + name), run.progress_dir);
      ql.zeros = from_blob<float>(get("zeros:" + name), run.progress_dir);
      ql.g_idx = from_blob<int32_t>(get("g_idx:" + name), run.progress_dir);
      ql.validate(run.progress_dir.c_str());
      const auto r = from_blob<double>(get("report:" + name), run.progress_dir);
      check(r.size() == 5, run.progress_dir, "corrupt progress file ({})", key);
      install(name, std::move(ql), {name, r[0], r[1], r[2], r[3], r[4]});
    }
  };
  run.quantize_layer = [&](int64_t layer, LayerwiseCalibration* cal) {
    LayerBlobs blobs;
    auto finish = [&](const std::string& name, QuantizedLinear ql, LinearReport r,
                      std::chrono::steady_clock::time_point t0) {
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      save_linear(blobs, name, ql, r);
      install(name, std::move(ql), r);
    };
    if (o.method == "awq") {
      std::map<std::string, std::vector<float>> original;
      for (const char* l : kLinears) {
        const std::string n = "blk." + std::to_string(layer) + "." + l + ".weight";
        original[n] = tensor_to_f32(overlay->tensor(n));
      }
      const auto t0 = std::chrono::steady_clock::now();
      AwqLayerScaling s = awq_scale_layer(*cal, *overlay, layer, o.awq, o.awq_max_tokens);
      for (const char* l : kLinears) {
        const std::string name = "blk." + std::to_string(layer) + "." + l + ".weight";
        std::vector<float>& w = s.weights.at(name);
        const std::vector<float>& x = s.inputs.at(name);
        const int64_t n_in = static_cast<int64_t>(x.size()) / s.n_tokens;
        const int64_t n_out = static_cast<int64_t>(w.size()) / n_in;
        // AutoAWQ skips the clip search for q and k (their errors meet in the attention scores).
        const bool clip = o.awq.clip && std::string(l) != "attn_q" && std::string(l) != "attn_k";
        if (clip) {
          AwqOptions ao = o.awq;
          ao.quant = o.config;
          const auto max_val = awq_search_clip(w.data(), n_out, n_in, x.data(), s.n_tokens, ao);
          awq_apply_clip(w.data(), n_out, n_in, o.config.group_len(n_in), max_val);
        }
        const auto w_hf = hf_order(config, name, w, n_in, n_out);
        QuantizedLinear ql = awq_pseudo_quantize(w_hf.data(), n_out, n_in, o.config);
        LinearReport r{name};
        // Both errors in the original domain (unscaled inputs and weights): the AWQ layer's effective weights
        // are diag(s_next) Q(W diag(s)) diag(1/s), s the group's scales, s_next those folded into its rows.
        const std::vector<float>* s_in = awq_group_scales(s, layer, l, false);
        const std::vector<float>* s_out = awq_group_scales(s, layer, l, true);
        std::vector<float> x_orig = x, wq = hf_order(config, name, ql.dequantize(), n_in, n_out, true);
        for (int64_t t = 0; t < s.n_tokens && s_in; ++t)
          for (int64_t i = 0; i < n_in; ++i) x_orig[t * n_in + i] *= (*s_in)[i];
        for (int64_t row = 0; row < n_out; ++row)
          for (int64_t i = 0; i < n_in; ++i)
            wq[row * n_in + i] = wq[row * n_in + i] / (s_in ? (*s_in)[i] : 1.f) * (s_out ? (*s_out)[row] : 1.f);
        const auto& w0 = original.at(name);
        r.error = reconstruction_error(w0.data(), wq.data(), n_out, n_in, x_orig.data(), s.n_tokens);
        const auto rtn = rtn_quantize(w0.data(), n_out, n_in, o.config).dequantize();
        r.rtn_error = reconstruction_error(w0.data(), rtn.data(), n_out, n_in, x_orig.data(), s.n_tokens);
        finish(name, std::move(ql), r, t0);
      }
      keep_layer_norms(*overlay, layer, blobs, install_norm);
      return blobs;
    }
    for_each_linear_with_hessian(cal, layer, o.true_sequential, [&](const std::string& name,
                                                                    const HessianAccumulator* h) {
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor t = overlay->tensor(name);
      const int64_t n_in = t.ne()[0], n_out = t.ne()[1];
      const std::vector<float> w = hf_order(config, name, tensor_to_f32(t), n_in, n_out);
      check_finite(w.data(), n_in * n_out, n_in, name);
      LinearReport r{name};
      QuantizedLinear rtn = rtn_quantize(w.data(), n_out, n_in, o.config);
      QuantizedLinear ql;
      if (o.method == "gptq") {
        GptqResult g = gptq_quantize(w.data(), n_out, n_in, *h, o.config, o.gptq);
        ql = std::move(g.layer);
        r.loss = g.loss;
        r.damp_percent = g.damp_percent;
        r.error = hessian_relative_error(w.data(), ql.dequantize().data(), n_out, n_in, *h);
        r.rtn_error = hessian_relative_error(w.data(), rtn.dequantize().data(), n_out, n_in, *h);
      } else {
        ql = std::move(rtn);
      }
      finish(name, std::move(ql), r, t0);
    });
    return blobs;
  };
  run_layerwise(run);

  // ---- export: HF names, packed linears, everything else in F16/BF16 (AWQ's rescaled norms) ----
  std::filesystem::create_directories(out_dir);
  check(o.dense_type == DType::F16 || o.dense_type == DType::BF16, "--dtype", "unquantized tensors are f16 or bf16");
  auto export_source = std::make_shared<OverlaySource>(source);
  for (const auto& [name, v] : results.norms)
    export_source->replace(make_f32_tensor(name, {static_cast<int64_t>(v.size())}, v));
  auto dense = convert_types(export_source, o.dense_type, /*vectors_as_f32=*/false);
  std::vector<TensorInfo> infos;
  std::map<std::string, const std::vector<uint8_t>*> pending;  // hf name -> bytes (packed parts)
  std::map<std::string, std::string> dense_names;              // hf name -> canonical
  for (const auto& info : source->tensor_infos()) {
    auto it = results.packed.find(info.name);
    if (it == results.packed.end()) {
      TensorInfo t = dense->tensor_info(info.name);
      t.name = gguf_to_hf_name(info.name);
      infos.push_back(t);
      dense_names[t.name] = info.name;
      continue;
    }
    for (const auto& [part, bytes] : it->second) {
      infos.push_back(part);
      pending[part.name] = &bytes;
    }
  }
  SafetensorsWriter writer(out_dir + "/model.safetensors", infos, {{"format", "pt"}});
  for (const auto& name : writer.write_order()) {
    if (auto it = pending.find(name); it != pending.end()) {
      writer.write(name, *it->second);
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
  q.quant_method = format;
  q.bits = o.config.bits;
  q.group_size = o.config.group_size;
  q.desc_act = o.config.desc_act;
  q.sym = o.config.sym;
  q.static_groups = o.config.static_groups;
  q.damp_percent = o.gptq.damp_percent;
  q.true_sequential = o.true_sequential;
  q.checkpoint_format = o.config.sym ? "gptq" : "gptq_v2";
  HfConfigExtras extras;
  extras.bos_token_id = source->vocab().bos_id;
  extras.eos_token_id = source->vocab().eos_id;
  auto cfg = nlohmann::ordered_json::parse(hf_config_json(config, extras));
  cfg["quantization_config"] = hf_quantization_config_block(q);
  write_file_atomic(out_dir + "/config.json", cfg.dump(2) + "\n");
  write_file_atomic(out_dir + (format == "awq" ? "/quant_config.json" : "/quantize_config.json"),
                    hf_quantize_config_file(q));
  write_hf_tokenizer(source->vocab(), out_dir);
  remove_progress(run.progress_dir);  // the checkpoint is complete
  return results.reports;
}

}  // namespace lowbit
