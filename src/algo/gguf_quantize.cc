#include "algo/gguf_quantize.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "core/float_rows.h"
#include "io/converted_source.h"
#include "io/gguf.h"
#include "io/gguf_source.h"
#include "io/hf_names.h"
#include "util/error.h"
#include "util/progress.h"

namespace lowbit {
namespace {

bool contains_any(const std::string& name, const std::vector<std::string>& parts) {
  return std::any_of(parts.begin(), parts.end(), [&](const std::string& p) { return name.find(p) != std::string::npos; });
}

uint32_t file_type_id(FileType f) { return static_cast<uint32_t>(f); }

GgufMetadata output_metadata(const ModelSource& src, const GgufQuantizeOptions& o) {
  GgufMetadata m;
  if (src.format() == "gguf") {
    m = open_gguf(src.path()).metadata;
  } else {
    double n_params = 0;
    for (const auto& t : src.tensor_infos()) n_params += static_cast<double>(t.n_elements());
    GgufModelInfo info{o.model_name.empty() ? "Model" : o.model_name, file_type_id(o.mix.ftype), n_params};
    m = gguf_metadata_for_model(src.config(), src.vocab(), info);
  }
  if (o.converter_layout) {
    if (src.format() == "gguf") m.set("general.file_type", GgufValue::of_u32(file_type_id(o.mix.ftype)));
    return m;
  }
  // llama-quantize: copy everything, then (re)set these two, which moves them to the end.
  m.set("general.quantization_version", GgufValue::of_u32(2));
  m.set("general.file_type", GgufValue::of_u32(file_type_id(o.mix.ftype)));
  for (const char* k : {"split.no", "split.count", "split.tensors.count"}) m.remove(k);
  if (!o.method_note.empty()) m.set("lowbit.quantize.method", GgufValue::of_string(o.method_note));
  if (o.imatrix) {
    m.set("quantize.imatrix.file", GgufValue::of_string(o.imatrix_path));
    m.set("quantize.imatrix.dataset",
          GgufValue::of_string(o.imatrix->datasets.empty() ? "" : o.imatrix->datasets.back()));
    m.set("quantize.imatrix.entries_count", GgufValue::of_i32(static_cast<int32_t>(o.imatrix->entries.size())));
    m.set("quantize.imatrix.chunks_count", GgufValue::of_i32(o.imatrix->chunks));
  }
  return m;
}

// convert_hf_to_gguf.py walks the safetensors keys in sorted order; llama2.c and GGUF inputs keep theirs.
std::vector<TensorPlan> converter_plans(const ModelSource& src) {
  std::vector<TensorPlan> plans;
  for (const auto& t : src.tensor_infos()) plans.push_back({t, t.type, false, {}});
  if (src.format() == "hf" || src.format() == "safetensors")
    std::stable_sort(plans.begin(), plans.end(), [](const TensorPlan& a, const TensorPlan& b) {
      return gguf_to_hf_name(a.name()) < gguf_to_hf_name(b.name());
    });
  return plans;
}

std::optional<std::vector<float>> importance_for(const TensorPlan& plan, const GgufQuantizeOptions& o) {
  if (!o.imatrix) return std::nullopt;
  if (!o.include_weights.empty() && !contains_any(plan.name(), o.include_weights)) return std::nullopt;
  if (contains_any(plan.name(), o.exclude_weights)) return std::nullopt;
  auto w = o.imatrix->importance(plan.name());
  if (!w) return std::nullopt;
  if (w->size() != static_cast<size_t>(plan.info.ne[0])) {
    // llama-quantize ignores a mismatched token_embd entry and refuses every other one.
    check(plan.name() == "token_embd.weight", o.imatrix_path,
          "imatrix entry for '{}' has {} values, the tensor's rows have {}", plan.name(), w->size(), plan.info.ne[0]);
    return std::nullopt;
  }
  return w;
}

// Rows per work chunk: at least 16K values (llama-quantize's chunk), so a chunk's floats stay in L2.
int64_t rows_per_chunk(int64_t n_per_row) { return std::max<int64_t>(1, (32 * 512 + n_per_row - 1) / n_per_row); }

[[noreturn]] void fail_non_finite(float value, int64_t index, int64_t n_per_row, const std::string& tensor_name) {
  fail(tensor_name, "{} at index {} (row {}, column {}): refusing non-finite weights", std::isnan(value) ? "NaN" : "Inf",
       index, index / n_per_row, index % n_per_row);
}

// Converts tensor `t` to float in chunks of whole rows on `threads` threads, checks each chunk for NaN/Inf and
// hands the clean ones to work(first_row, n_rows, values). Converting per chunk keeps the floats in cache for the
// quantizer and needs no whole-tensor float copy. If any value is not finite, the first one in the tensor is
// reported (whatever the thread count) once all chunks are done. Chunks are independent, so whatever `work`
// writes for a chunk does not depend on the thread count either.
template <typename Work>
void for_each_float_chunk(const Tensor& t, int threads, const std::string& name, const Work& work) {
  const int64_t n_per_row = t.info.ne[0];
  const int64_t nrows = t.info.n_rows();
  const int64_t chunk_rows = rows_per_chunk(n_per_row);
  const int64_t n_chunks = (nrows + chunk_rows - 1) / chunk_rows;
  const size_t src_row_bytes = row_bytes(t.type(), n_per_row);
  int64_t bad_index = -1;  // first non-finite element over all chunks
  float bad_value = 0;
  std::string error;
  // No more threads than chunks: a small tensor is not worth waking (or waiting for) a second core.
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(threads, n_chunks)))
  {
    std::vector<float> values(static_cast<size_t>(chunk_rows * n_per_row));
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t r0 = c * chunk_rows;
      const int64_t nr = std::min(chunk_rows, nrows - r0);
      try {
        to_float(t.type(), t.data + static_cast<size_t>(r0) * src_row_bytes, values.data(), nr * n_per_row, name);
        const int64_t bad = first_non_finite(values.data(), nr * n_per_row);
        if (bad >= 0) {
#pragma omp critical
          if (bad_index < 0 || r0 * n_per_row + bad < bad_index) {
            bad_index = r0 * n_per_row + bad;
            bad_value = values[static_cast<size_t>(bad)];
          }
          continue;
        }
        work(r0, nr, values.data());
      } catch (const Error& e) {
#pragma omp critical
        error = e.what();
      }
    }
  }
  if (bad_index >= 0) fail_non_finite(bad_value, bad_index, n_per_row, name);
  if (!error.empty()) throw Error(error);
}

}  // namespace

void check_finite(const float* values, int64_t n, int64_t n_per_row, const std::string& tensor_name) {
  const int64_t bad = first_non_finite(values, n);
  if (bad >= 0) fail_non_finite(values[bad], bad, n_per_row, tensor_name);
}

uint64_t QuantizeReport::bytes_out() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.bytes_out;
  return n;
}

std::string QuantizeReport::summary_table() const {
  struct Row {
    int tensors = 0;
    int64_t elements = 0;
    uint64_t bytes = 0;
    double seconds = 0;
  };
  std::map<std::string, Row> rows;
  Row all;
  uint64_t in = 0;
  for (const auto& t : tensors) {
    auto& r = rows[dtype_name(t.to)];
    r.tensors++, r.elements += t.n_elements, r.bytes += t.bytes_out, r.seconds += t.seconds;
    all.tensors++, all.elements += t.n_elements, all.bytes += t.bytes_out, all.seconds += t.seconds;
    in += t.bytes_in;
  }
  std::string out = fmt::format("| {:<7} | {:>7} | {:>12} | {:>12} | {:>6} | {:>8} |\n", "type", "tensors", "params",
                                "bytes", "bpw", "time s");
  out += "|---------|---------|--------------|--------------|--------|----------|\n";
  auto line = [&](const std::string& name, const Row& r) {
    out += fmt::format("| {:<7} | {:>7} | {:>12} | {:>12} | {:>6.3f} | {:>8.3f} |\n", name, r.tensors, r.elements,
                       r.bytes, r.elements ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(r.elements) : 0.0,
                       r.seconds);
  };
  for (const auto& [name, r] : rows) line(name, r);
  line("total", all);
  out += fmt::format("{:.2f} MiB -> {:.2f} MiB in {:.2f} s\n", static_cast<double>(in) / 1048576.0,
                     static_cast<double>(all.bytes) / 1048576.0, seconds);
  return out;
}

namespace {

// Non-GGUF inputs are seen as llama.cpp's converter would write them: vectors in F32, matrices as stored (or in
// the requested float type for `convert`).
std::shared_ptr<const ModelSource> gguf_input_view(std::shared_ptr<const ModelSource> input,
                                                   const GgufQuantizeOptions& o) {
  if (o.converter_layout) return convert_types(input, file_type_info(o.mix.ftype).default_type);
  if (input->format() != "gguf") return convert_types(input, std::nullopt);
  return input;
}

std::vector<TensorPlan> plans_for(const ModelSource& src, const GgufQuantizeOptions& o) {
  MixOptions mix = o.mix;
  mix.has_imatrix = o.imatrix != nullptr || o.prequantized != nullptr;
  return o.converter_layout ? converter_plans(src) : plan_tensor_types(src.config(), src.tensor_infos(), mix);
}

}  // namespace

std::vector<TensorPlan> gguf_tensor_plan(std::shared_ptr<const ModelSource> source, const GgufQuantizeOptions& o) {
  return plans_for(*gguf_input_view(std::move(source), o), o);
}

QuantizeReport quantize_to_gguf(std::shared_ptr<const ModelSource> input, const std::string& out_path,
                                const GgufQuantizeOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::shared_ptr<const ModelSource> src = gguf_input_view(input, o);
  const GgufMetadata metadata = output_metadata(*src, o);
  std::vector<TensorPlan> plans = plans_for(*src, o);
  if (o.imatrix) {
    const bool any = std::any_of(plans.begin(), plans.end(),
                                 [&](const TensorPlan& p) { return o.imatrix->entries.count(p.name()) > 0; });
    check(any, o.imatrix_path, "none of the importance matrix's {} entries names a tensor of {}",
          o.imatrix->entries.size(), input->path());
  }

  std::vector<TensorInfo> out_infos;
  for (const auto& p : plans) {
    TensorInfo t = p.info;
    t.type = p.target_type;
    out_infos.push_back(t);
  }
  GgufWriter writer(out_path, metadata, out_infos);
  QuantizeReport report;
  Progress progress("quantize", static_cast<int64_t>(plans.size()));
  const int threads = std::max(1, o.threads);
  std::vector<uint8_t> out;
  for (const auto& plan : plans) {
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor t = src->tensor(plan.name());
    TensorReport r{plan.name(), t.type(), plan.target_type, t.info.n_bytes(), 0, t.info.n_elements(), 0, false,
                   plan.fallback};
    const auto& traits = type_traits(t.type());
    const auto pre = o.prequantized ? o.prequantized->find(plan.name()) : decltype(o.prequantized->end()){};
    if (o.prequantized && pre != o.prequantized->end()) {
      TensorInfo target = plan.info;
      target.type = plan.target_type;
      check(plan.quantize && pre->second.size() == target.n_bytes(), plan.name(),
            "prequantized tensor has {} bytes, its planned type {} needs {}", pre->second.size(),
            dtype_name(plan.target_type), target.n_bytes());
      writer.write_tensor(pre->second);
      r.bytes_out = pre->second.size();
    } else if (!plan.quantize) {
      if (traits.is_float && traits.to_float) {  // a copied float tensor is still checked for NaN/Inf
        for_each_float_chunk(t, threads, plan.name(), [](int64_t, int64_t, const float*) {});
      }
      writer.write_tensor(t.bytes());
      r.bytes_out = t.info.n_bytes();
    } else {
      check(!traits.is_quantized || o.allow_requantize, input->path(),
            "tensor '{}' is already {}: requantizing is disabled (use --allow-requantize)", plan.name(), traits.name);
      const auto importance = importance_for(plan, o);
      r.used_imatrix = importance.has_value();
      TensorInfo target = plan.info;
      target.type = plan.target_type;
      out.resize(target.n_bytes());
      const size_t out_row_bytes = row_bytes(target.type, target.ne[0]);
      for_each_float_chunk(t, threads, plan.name(), [&](int64_t r0, int64_t nr, const float* values) {
        quantize_rows(target.type, values, out.data() + static_cast<size_t>(r0) * out_row_bytes, nr, target.ne[0],
                      importance ? importance->data() : nullptr, plan.name());
      });
      writer.write_tensor(out);
      r.bytes_out = out.size();
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report.tensors.push_back(std::move(r));
    progress.advance();
  }
  writer.finish();
  progress.finish();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return report;
}

}  // namespace lowbit
