#include "algo/awq_model.h"

#include <algorithm>

#include "algo/gguf_quantize.h"
#include "util/error.h"

namespace lowbit {
namespace {

Tensor f32_like(const std::string& name, const TensorInfo& like, std::vector<float> values) {
  std::vector<int64_t> ne(like.ne.begin(), like.ne.begin() + like.n_dims);
  return make_f32_tensor(name, ne, std::move(values));
}

}  // namespace

AwqLayerScaling awq_scale_layer(LayerwiseCalibration& cal, OverlaySource& overlay, int64_t layer,
                                const AwqOptions& options, int64_t max_tokens) {
  const ModelConfig& config = overlay.config();
  const std::string p = "blk." + std::to_string(layer) + ".";
  auto name = [&](const char* n) { return p + n + ".weight"; };
  // Inputs of the four groups, keyed by the linear that first reads them.
  const std::vector<std::string> readers = {name("attn_q"), name("attn_output"), name("ffn_gate"), name("ffn_down")};
  AwqLayerScaling out;
  int64_t total = 0;
  cal.capture(layer, [&](const Tensor& w, const float*, int64_t n) {
    if (w.name() == readers[0]) total += n;
  });
  const int64_t stride = std::max<int64_t>(1, (total + max_tokens - 1) / std::max<int64_t>(1, max_tokens));
  int64_t seen = 0;  // token index over all windows, for the stride
  cal.capture(layer, [&](const Tensor& w, const float* x, int64_t n) {
    if (std::find(readers.begin(), readers.end(), w.name()) == readers.end()) return;
    const int64_t n_in = w.ne()[0];
    auto& dst = out.inputs[w.name()];
    const int64_t base = w.name() == readers[0] ? seen : seen - n;  // all four readers see the same tokens
    for (int64_t t = 0; t < n; ++t)
      if ((base + t) % stride == 0) dst.insert(dst.end(), x + t * n_in, x + (t + 1) * n_in);
    if (w.name() == readers[0]) seen += n;
  });
  out.n_tokens = static_cast<int64_t>(out.inputs[readers[0]].size()) / config.n_embd;
  check(out.n_tokens > 0, "awq", "no calibration tokens reached layer {}", layer);

  for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
    out.weights[name(n)] = tensor_to_f32(overlay.tensor(name(n)));
    const auto& w = out.weights[name(n)];
    check_finite(w.data(), static_cast<int64_t>(w.size()), overlay.tensor_info(name(n)).ne[0], name(n));
  }
  std::vector<float> attn_norm = tensor_to_f32(overlay.tensor(name("attn_norm")));
  std::vector<float> ffn_norm = tensor_to_f32(overlay.tensor(name("ffn_norm")));

  struct Group {
    std::vector<std::string> linears;
    std::string producer;  // norm or previous linear whose outputs feed the group
    bool producer_is_norm;
  };
  std::vector<Group> groups = {{{name("attn_q"), name("attn_k"), name("attn_v")}, name("attn_norm"), true},
                               {{name("attn_output")}, name("attn_v"), false},
                               {{name("ffn_gate"), name("ffn_up")}, name("ffn_norm"), true},
                               {{name("ffn_down")}, name("ffn_up"), false}};
  if (config.n_embd_kv() != config.n_embd_q()) groups.erase(groups.begin() + 1);

  // All searches on the unscaled layer first, as AutoAWQ does; then apply.
  std::vector<std::vector<float>> group_scales;
  for (const Group& g : groups) {
    const std::vector<float>& x = out.inputs[g.linears[0]];
    const int64_t n_in = static_cast<int64_t>(x.size()) / out.n_tokens;
    std::vector<AwqLinear> linears;
    for (const auto& l : g.linears)
      linears.push_back({out.weights[l].data(), static_cast<int64_t>(out.weights[l].size()) / n_in});
    AwqScaleResult r = awq_search_scales(linears, n_in, x.data(), out.n_tokens, options);
    group_scales.push_back(r.scales);
    out.scales[g.linears[0]] = std::move(r);
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& g = groups[gi];
    const std::vector<float>& s = group_scales[gi];
    const int64_t n_in = static_cast<int64_t>(s.size());
    for (const auto& l : g.linears) {
      auto& w = out.weights[l];
      scale_input_columns(w.data(), static_cast<int64_t>(w.size()) / n_in, n_in, s.data());
    }
    if (g.producer_is_norm) {
      fold_scales_into_norm((g.producer == name("attn_norm") ? attn_norm : ffn_norm).data(), nullptr, n_in, s.data());
    } else {
      auto& prev = out.weights[g.producer];
      fold_scales_into_linear_rows(prev.data(), nullptr, n_in, static_cast<int64_t>(prev.size()) / n_in, s.data());
    }
    // The inputs the scaled group sees.
    std::vector<float>& x = out.inputs[g.linears[0]];
    for (int64_t t = 0; t < out.n_tokens; ++t)
      for (int64_t i = 0; i < n_in; ++i) x[static_cast<size_t>(t * n_in + i)] /= s[static_cast<size_t>(i)];
  }
  for (const auto& [n, w] : out.weights) overlay.replace(f32_like(n, overlay.tensor_info(n), w));
  overlay.replace(f32_like(name("attn_norm"), overlay.tensor_info(name("attn_norm")), attn_norm));
  overlay.replace(f32_like(name("ffn_norm"), overlay.tensor_info(name("ffn_norm")), ffn_norm));
  // Linears sharing a group input share the captured inputs.
  out.inputs[name("attn_k")] = out.inputs[name("attn_v")] = out.inputs[name("attn_q")];
  out.inputs[name("ffn_up")] = out.inputs[name("ffn_gate")];
  return out;
}

}  // namespace lowbit
