#include "algo/gguf_calibrated.h"

#include <fmt/format.h>

#include <chrono>
#include <map>

#include "algo/awq_model.h"
#include "algo/gptq_ggml.h"
#include "io/converted_source.h"
#include "util/error.h"

namespace lowbit {
namespace {

std::string fingerprint(const GgufQuantizeOptions& g, const CalibratedGgufOptions& o) {
  return fmt::format("gguf {} ftype {} pure {} method {} true_seq {}\ndamp {} step {}\nawq grid {} duo {} tokens {}\n"
                     "calib {} {} {} {}\n",
                     file_type_info(g.mix.ftype).name, static_cast<int>(g.mix.ftype), g.mix.pure, o.method,
                     o.true_sequential, o.gptq.damp_percent, o.gptq.damp_auto_increment, o.awq.n_grid,
                     o.awq.duo_scaling, o.awq_max_tokens, o.calib.text_path, o.calib.nsamples, o.calib.seqlen,
                     o.calib.seed);
}

std::vector<float> dequantize(DType type, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  to_float(type, bytes.data(), out.data(), n);
  return out;
}

// Column importance from inputs X [n_tokens][n_in]: mean of x^2, as an importance matrix holds it.
std::vector<float> mean_square_columns(const std::vector<float>& x, int64_t n_in) {
  const int64_t n_tokens = static_cast<int64_t>(x.size()) / n_in;
  std::vector<double> acc(static_cast<size_t>(n_in), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < n_in; ++i) acc[i] += static_cast<double>(x[t * n_in + i]) * x[t * n_in + i];
  std::vector<float> out(static_cast<size_t>(n_in));
  for (int64_t i = 0; i < n_in; ++i) out[i] = static_cast<float>(acc[i] / static_cast<double>(std::max<int64_t>(1, n_tokens)));
  return out;
}

}  // namespace

CalibratedGgufReport quantize_to_gguf_calibrated(std::shared_ptr<const ModelSource> input, const std::string& out_path,
                                                 const GgufQuantizeOptions& gguf, const CalibratedGgufOptions& o) {
  check(o.method == "gptq" || o.method == "awq", "--method", "'{}' has no GGUF variant (gptq or awq)", o.method);
  check(!gguf.converter_layout && gguf.imatrix == nullptr, "--method",
        "a calibrated GGUF takes its importance from the calibration text, not --imatrix");
  // The model as llama-quantize would see it (vectors F32) and the type every tensor gets.
  std::shared_ptr<const ModelSource> base = input->format() == "gguf" ? input : convert_types(input, std::nullopt);
  std::map<std::string, DType> target;
  for (const auto& p : gguf_tensor_plan(base, gguf)) target[p.name()] = p.quantize ? p.target_type : p.info.type;

  auto overlay = std::make_shared<OverlaySource>(base);
  std::map<std::string, std::vector<uint8_t>> quantized;  // linear -> bytes of its planned type
  std::map<std::string, std::vector<float>> norms;         // AWQ: rescaled norm vectors
  CalibratedGgufReport report;
  auto install = [&](const std::string& name, std::vector<uint8_t> bytes, const LinearReport& r) {
    TensorInfo info = base->tensor_info(name);
    info.type = target.at(name);
    overlay->replace(make_owned_tensor(info, bytes));
    quantized[name] = std::move(bytes);
    report.linears.push_back(r);
  };
  auto install_norm = [&](const std::string& name, std::vector<float> v) {
    overlay->replace(make_f32_tensor(name, {static_cast<int64_t>(v.size())}, v));
    norms[name] = std::move(v);
  };
  // Quantizes W (GGUF order) to its planned type: GPTQ with a Hessian, else ggml's search with `importance`.
  auto quantize_linear = [&](const std::string& name, const std::vector<float>& w, const HessianAccumulator* h,
                             const std::vector<float>& importance, LinearReport& r) {
    const TensorInfo& info = base->tensor_info(name);
    const int64_t n_in = info.ne[0], n_out = info.ne[1];
    const DType type = target.at(name);
    const TypeTraits& t = type_traits(type);
    std::vector<uint8_t> plain(row_bytes(type, n_in) * static_cast<size_t>(n_out));
    quantize_rows(type, w.data(), plain.data(), n_out, n_in, t.is_quantized ? importance.data() : nullptr, name);
    if (!h || !t.is_quantized || !t.set_levels) return plain;
    GgmlGptqResult g = gptq_quantize_ggml(w.data(), n_out, n_in, *h, type, o.gptq, importance.data());
    r.loss = g.loss;
    r.damp_percent = g.damp_percent;
    r.error = hessian_relative_error(w.data(), dequantize(type, g.bytes, n_in * n_out).data(), n_out, n_in, *h);
    r.rtn_error = hessian_relative_error(w.data(), dequantize(type, plain, n_in * n_out).data(), n_out, n_in, *h);
    return std::move(g.bytes);
  };

  LayerwiseRun run;
  run.source = base;
  run.overlay = overlay;
  run.calib = o.calib;
  run.fingerprint = fingerprint(gguf, o);
  run.progress_dir = out_path + ".lowbit-progress";
  run.resume = o.resume;
  run.threads = gguf.threads;
  run.stop_after_layers = o.stop_after_layers;
  run.restore_layer = [&](int64_t, const LayerBlobs& saved) {
    for (const auto& [key, bytes] : saved) {
      const auto colon = key.find(':');
      const std::string kind = key.substr(0, colon), name = key.substr(colon + 1);
      check(colon != std::string::npos && base->has_tensor(name), run.progress_dir, "corrupt progress file ({})", key);
      if (kind == "norm") {
        install_norm(name, saved_norm(*base, name, bytes, run.progress_dir));
      } else if (kind == "tensor") {
        check(bytes.size() == row_bytes(target.at(name), base->tensor_info(name).ne[0]) *
                                   static_cast<size_t>(base->tensor_info(name).n_rows()),
              run.progress_dir, "corrupt progress file ({})", key);
        install(name, bytes, {name});
      } else if (kind == "report" && !report.linears.empty()) {
        const auto r = from_blob<double>(bytes, run.progress_dir);
        check(r.size() == 5, run.progress_dir, "corrupt progress file ({})", key);
        report.linears.back() = {name, r[0], r[1], r[2], r[3], r[4]};
      }
    }
  };
  run.quantize_layer = [&](int64_t layer, LayerwiseCalibration* cal) {
    LayerBlobs blobs;
    auto finish = [&](const std::string& name, std::vector<uint8_t> bytes, LinearReport r,
                      std::chrono::steady_clock::time_point t0) {
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      blobs.emplace_back("tensor:" + name, bytes);
      blobs.emplace_back("report:" + name, to_blob(std::vector<double>{r.loss, r.damp_percent, r.seconds, r.error,
                                                                         r.rtn_error}));
      install(name, std::move(bytes), r);
    };
    if (o.method == "awq") {
      const auto t0 = std::chrono::steady_clock::now();
      AwqLayerScaling s = awq_scale_layer(*cal, *overlay, layer, o.awq, o.awq_max_tokens);
      for (const auto& [name, w] : s.weights) {
        const auto& x = s.inputs.at(name);
        const int64_t n_in = static_cast<int64_t>(x.size()) / s.n_tokens;
        LinearReport r{name};
        const auto bytes = quantize_linear(name, w, nullptr, mean_square_columns(x, n_in), r);
        const int64_t n_out = static_cast<int64_t>(w.size()) / n_in;
        r.error = reconstruction_error(w.data(), dequantize(target.at(name), bytes, n_in * n_out).data(), n_out, n_in,
                                       x.data(), s.n_tokens);
        finish(name, bytes, r, t0);
      }
      keep_layer_norms(*overlay, layer, blobs, install_norm);
      return blobs;
    }
    for_each_linear_with_hessian(cal, layer, o.true_sequential, [&](const std::string& name,
                                                                    const HessianAccumulator* h) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<float> w = tensor_to_f32(overlay->tensor(name));
      check_finite(w.data(), static_cast<int64_t>(w.size()), overlay->tensor_info(name).ne[0], name);
      std::vector<float> diag(static_cast<size_t>(h->n_in()));
      for (int64_t i = 0; i < h->n_in(); ++i) diag[i] = static_cast<float>(h->matrix()[i * h->n_in() + i]);
      LinearReport r{name};
      std::vector<uint8_t> bytes = quantize_linear(name, w, h, diag, r);  // fills r
      finish(name, std::move(bytes), r, t0);
    });
    return blobs;
  };
  // An untied output head from the final hidden states: GPTQ for the gptq method. (A tied token_embd is left to
  // the type's search: on tiny-gutenberg Q4_K_M, GPTQ on it lowered the head's output error by half but raised
  // the KLD, 0.01270 -> 0.01298, through the embedding lookups.)
  run.after_layers = [&](LayerwiseCalibration* cal) {
    if (o.method != "gptq" || !cal) return;
    const std::string name = cal->output_tensor().name();
    if (name != "output.weight" || !target.count(name) || !type_traits(target.at(name)).is_quantized) return;
    const auto t0 = std::chrono::steady_clock::now();
    HessianAccumulator h(cal->output_tensor().ne()[0]);
    cal->capture_head([&](const Tensor& w, const float* x, int64_t n) {
      if (w.name() == name) h.add_batch(x, n);
    });
    const std::vector<float> w = tensor_to_f32(base->tensor(name));
    std::vector<float> diag(static_cast<size_t>(h.n_in()));
    for (int64_t i = 0; i < h.n_in(); ++i) diag[i] = static_cast<float>(h.matrix()[i * h.n_in() + i]);
    LinearReport r{name};
    std::vector<uint8_t> bytes = quantize_linear(name, w, &h, diag, r);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    install(name, std::move(bytes), r);
  };
  run_layerwise(run);

  // Write: the base with the rescaled norms, the linears as quantized above, the rest as llama-quantize would.
  auto out_source = std::make_shared<OverlaySource>(base);
  for (const auto& [name, v] : norms) out_source->replace(make_f32_tensor(name, {static_cast<int64_t>(v.size())}, v));
  GgufQuantizeOptions g = gguf;
  g.prequantized = &quantized;
  g.method_note = o.method;
  report.quantize = quantize_to_gguf(out_source, out_path, g);
  remove_progress(run.progress_dir);
  return report;
}

}  // namespace lowbit
