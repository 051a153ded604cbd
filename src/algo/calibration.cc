#include "algo/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "model/tokenizer.h"
#include "util/atomic_file.h"
#include "util/progress.h"

namespace lowbit {

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

std::vector<std::vector<int32_t>> calibration_windows(const ModelSource& source, const CalibrationOptions& o) {
  check(!o.text_path.empty(), "--calib", "this method needs calibration text");
  Tokenizer tok(source.vocab());
  return calibration_windows(tok.encode(read_text_file(o.text_path), false), o);
}

const std::vector<TensorInfo>& OverlaySource::tensor_infos() const {
  return replaced_.empty() ? base_->tensor_infos() : infos_;
}

Tensor OverlaySource::tensor(const std::string& name) const {
  auto it = replaced_.find(name);
  return it != replaced_.end() ? it->second : base_->tensor(name);
}

void OverlaySource::replace(Tensor t) {
  const TensorInfo& old = base_->tensor_info(t.name());
  check(old.ne == t.info.ne, t.name(), "replacement has shape {}, the model's tensor {}", t.info.shape_string(),
        old.shape_string());
  if (infos_.empty()) infos_ = base_->tensor_infos();
  for (auto& info : infos_)
    if (info.name == t.name()) info.type = t.type();
  replaced_[t.name()] = std::move(t);
}

void OverlaySource::forget_prefix(const std::string& prefix) {
  for (auto it = replaced_.begin(); it != replaced_.end();) {
    if (it->first.rfind(prefix, 0) != 0) {
      ++it;
      continue;
    }
    for (auto& info : infos_)
      if (info.name == it->first) info.type = base_->tensor_info(it->first).type;
    it = replaced_.erase(it);
  }
}

std::vector<std::vector<std::string>> linear_groups(int64_t layer, bool true_sequential) {
  const std::string p = "blk." + std::to_string(layer) + ".";
  auto names = [&](std::initializer_list<const char*> l) {
    std::vector<std::string> out;
    for (const char* n : l) out.push_back(p + n + ".weight");
    return out;
  };
  if (!true_sequential)
    return {names({"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})};
  return {names({"attn_q", "attn_k", "attn_v"}), names({"attn_output"}), names({"ffn_gate", "ffn_up"}),
          names({"ffn_down"})};
}

LayerwiseCalibration::LayerwiseCalibration(std::shared_ptr<OverlaySource> source,
                                           std::vector<std::vector<int32_t>> windows, int threads)
    : model_(source, {static_cast<int64_t>(windows.empty() ? 1 : windows[0].size()), threads}),
      windows_(std::move(windows)) {
  const int64_t dim = model_.config().n_embd;
  for (const auto& w : windows_) {
    hidden_.emplace_back(w.size() * static_cast<size_t>(dim));
    model_.embed(w, hidden_.back().data());
  }
}

void LayerwiseCalibration::capture(int64_t layer, const LlamaModel::MatmulObserver& observer) {
  model_.set_matmul_observer(observer);
  std::vector<float> x;
  for (size_t i = 0; i < windows_.size(); ++i) {
    x = hidden_[i];
    model_.forward_layer(layer, x.data(), static_cast<int64_t>(windows_[i].size()), 0);
  }
  model_.set_matmul_observer(nullptr);
}

void LayerwiseCalibration::advance(int64_t layer) {
  for (size_t i = 0; i < windows_.size(); ++i)
    model_.forward_layer(layer, hidden_[i].data(), static_cast<int64_t>(windows_[i].size()), 0);
}

void LayerwiseCalibration::capture_head(const LlamaModel::MatmulObserver& observer) {
  model_.set_matmul_observer(observer);
  std::vector<float> logits;
  for (size_t i = 0; i < windows_.size(); ++i) {
    const int64_t n = static_cast<int64_t>(windows_[i].size());
    logits.resize(static_cast<size_t>(n * model_.n_vocab()));
    model_.head(hidden_[i].data(), n, logits.data());
  }
  model_.set_matmul_observer(nullptr);
}

uint64_t LayerwiseCalibration::hidden_bytes() const {
  uint64_t n = 0;
  for (const auto& h : hidden_) n += h.size() * sizeof(float);
  return n;
}

void for_each_linear_with_hessian(LayerwiseCalibration* cal, int64_t layer, bool true_sequential,
                                  const std::function<void(const std::string&, const HessianAccumulator*)>& quantize) {
  for (const auto& group : linear_groups(layer, true_sequential)) {
    std::map<std::string, HessianAccumulator> hessians;
    if (cal) {
      cal->capture(layer, [&](const Tensor& w, const float* x, int64_t n) {
        if (std::find(group.begin(), group.end(), w.name()) == group.end()) return;
        hessians.try_emplace(w.name(), w.ne()[0]).first->second.add_batch(x, n);
      });
    }
    for (const std::string& name : group) {
      auto h = hessians.find(name);
      check(!cal || h != hessians.end(), name, "no calibration activations reached this layer");
      quantize(name, cal ? &h->second : nullptr);
    }
    if (cal) cal->reload(layer);
  }
}

namespace {

std::string serialize(const LayerBlobs& blobs) {
  std::string out;
  auto put = [&](const void* p, uint64_t n) {
    out.append(reinterpret_cast<const char*>(&n), 8);
    out.append(static_cast<const char*>(p), n);
  };
  for (const auto& [name, bytes] : blobs) {
    put(name.data(), name.size());
    put(bytes.data(), bytes.size());
  }
  return out;
}

LayerBlobs deserialize(const std::string& in, const std::string& where) {
  LayerBlobs blobs;
  size_t pos = 0;
  auto get = [&]() {
    uint64_t n = 0;
    check(in.size() - pos >= 8, where, "truncated progress file");
    std::memcpy(&n, in.data() + pos, 8);
    pos += 8;
    check(n <= in.size() - pos, where, "truncated progress file");
    std::string s = in.substr(pos, n);
    pos += n;
    return s;
  };
  while (pos < in.size()) {
    std::string name = get();
    const std::string bytes = get();
    blobs.emplace_back(std::move(name), std::vector<uint8_t>(bytes.begin(), bytes.end()));
  }
  return blobs;
}

std::string layer_file(const std::string& dir, int64_t layer) { return dir + "/layer-" + std::to_string(layer) + ".bin"; }

}  // namespace

void run_layerwise(const LayerwiseRun& run) {
  const ModelConfig& config = run.source->config();
  const std::string options_file = run.progress_dir + "/options";
  const std::string fingerprint = "lowbit-layerwise-progress 2\nsource " + run.source->path() + "\n" + run.fingerprint;
  int64_t first_layer = 0;
  if (run.resume && std::filesystem::exists(options_file)) {
    check(read_text_file(options_file) == fingerprint, run.progress_dir,
          "was made with other options or another source; remove it or run without --resume");
    for (; first_layer < config.n_layer; ++first_layer) {
      const std::string f = layer_file(run.progress_dir, first_layer);
      if (!std::filesystem::exists(f)) break;
      run.restore_layer(first_layer, deserialize(read_text_file(f), f));
    }
  } else {
    std::filesystem::remove_all(run.progress_dir);
  }
  std::filesystem::create_directories(run.progress_dir);
  write_file_atomic(options_file, fingerprint);

  std::unique_ptr<LayerwiseCalibration> cal;
  // A finished layer is never run again: drop its F32 copies and let the engine point at the mapped input.
  auto release = [&](int64_t layer) {
    run.overlay->forget_prefix("blk." + std::to_string(layer) + ".");
    if (cal) cal->reload(layer);
  };
  if (run.needs_calibration) {
    cal = std::make_unique<LayerwiseCalibration>(run.overlay, calibration_windows(*run.source, run.calib),
                                                 run.threads);
    for (int64_t layer = 0; layer < first_layer; ++layer) {  // through the restored layers
      cal->advance(layer);
      release(layer);
    }
  }
  Progress progress("layers", config.n_layer);
  progress.set(first_layer);
  for (int64_t layer = first_layer; layer < config.n_layer; ++layer) {
    if (run.stop_after_layers >= 0 && layer >= run.stop_after_layers)
      fail("quantize", "stopped after {} layers (test hook)", layer);
    const LayerBlobs blobs = run.quantize_layer(layer, cal.get());
    write_file_atomic(layer_file(run.progress_dir, layer), serialize(blobs));
    if (cal) {
      cal->reload(layer);
      cal->advance(layer);
    }
    release(layer);
    progress.advance();
  }
  progress.finish();
  if (run.after_layers) run.after_layers(cal.get());
}

std::string linear_report_table(const std::vector<LinearReport>& reports) {
  std::string out = fmt::format("| {:<28} | {:>10} | {:>10} | {:>6} | {:>10} | {:>6} | {:>7} |\n", "linear", "rel. error",
                                "baseline", "ratio", "GPTQ loss", "damp", "time s");
  out += "|------------------------------|------------|------------|--------|------------|--------|---------|\n";
  auto num = [](double v) { return v < 0 ? std::string("-") : fmt::format("{:.3e}", v); };
  for (const auto& r : reports) {
    out += fmt::format("| {:<28} | {:>10} | {:>10} | {:>6} | {:>10} | {:>6} | {:>7.3f} |\n", r.name, num(r.error),
                       num(r.rtn_error),
                       r.error >= 0 && r.rtn_error > 0 ? fmt::format("{:.3f}", r.error / r.rtn_error) : "-",
                       r.loss > 0 ? fmt::format("{:.4g}", r.loss) : "-",
                       r.damp_percent > 0 ? fmt::format("{:.4f}", r.damp_percent) : "-", r.seconds);
  }
  return out;
}

void keep_layer_norms(const ModelSource& overlay, int64_t layer, LayerBlobs& blobs, const InstallNorm& install) {
  for (const char* norm : {"attn_norm", "ffn_norm"}) {
    const std::string name = "blk." + std::to_string(layer) + "." + norm + ".weight";
    std::vector<float> v = tensor_to_f32(overlay.tensor(name));
    blobs.emplace_back("norm:" + name, to_blob(v));
    install(name, std::move(v));
  }
}

std::vector<float> saved_norm(const ModelSource& source, const std::string& name, const std::vector<uint8_t>& bytes,
                              const std::string& progress_dir) {
  std::vector<float> v = from_blob<float>(bytes, progress_dir);
  check(source.has_tensor(name) && static_cast<int64_t>(v.size()) == source.tensor_info(name).n_elements(),
        progress_dir, "corrupt progress file (norm:{})", name);
  return v;
}

void remove_progress(const std::string& progress_dir) { std::filesystem::remove_all(progress_dir); }

}  // namespace lowbit
