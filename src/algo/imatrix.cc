#include "algo/imatrix.h"

#include <cmath>
#include <algorithm>
#include <cstring>

#include "io/gguf.h"
#include "model/llama.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace lowbit {
namespace {

// Bounds-checked little-endian reader over a byte span; every failure names the file.
class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, const std::string& where) : bytes_(bytes), where_(where) {}
  size_t remaining() const { return bytes_.size() - pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }
  template <typename T>
  T read(const char* what) {
    check(remaining() >= sizeof(T), where_, "truncated while reading {} at byte {}", what, pos_);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_bytes(size_t n, const char* what) {
    check(remaining() >= n, where_, "truncated while reading {} ({} bytes) at byte {}", what, n, pos_);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void read_floats(std::vector<float>& out, size_t n, const char* what) {
    check(remaining() / sizeof(float) >= n, where_, "truncated while reading {} ({} values) at byte {}", what, n, pos_);
    out.resize(n);
    std::memcpy(out.data(), bytes_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
  }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& where_;
  size_t pos_ = 0;
};

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

std::optional<std::vector<float>> Imatrix::importance(const std::string& tensor_name) const {
  auto it = entries.find(tensor_name);
  if (it == entries.end()) return std::nullopt;
  std::vector<float> w(it->second.sum2.size());
  for (size_t j = 0; j < w.size(); ++j) w[j] = it->second.count > 0 ? it->second.sum2[j] / it->second.count : 0.0f;
  return w;
}

void Imatrix::merge(const Imatrix& other, const std::string& where) {
  for (const auto& [name, e] : other.entries) {
    auto [it, inserted] = entries.try_emplace(name, e);
    if (inserted) continue;
    check(it->second.sum2.size() == e.sum2.size(), where, "entry '{}' has {} values, expected {}", name,
          e.sum2.size(), it->second.sum2.size());
    for (size_t j = 0; j < e.sum2.size(); ++j) it->second.sum2[j] += e.sum2[j];
    it->second.count += e.count;
    it->second.ncall += e.ncall;
  }
  datasets.insert(datasets.end(), other.datasets.begin(), other.datasets.end());
  chunks += other.chunks;
  if (chunk_size == 0) chunk_size = other.chunk_size;
}

void ImatrixCollector::observe(const std::string& name, const float* x, int64_t n_tokens, int64_t n_in) {
  if (n_tokens < 16) return;  // llama-imatrix ignores small batches
  if (!(name.rfind("blk.", 0) == 0 || (process_output_ && name == "output.weight"))) return;
  ImatrixEntry& e = imatrix_.entries[name];
  if (e.sum2.empty()) e.sum2.assign(static_cast<size_t>(n_in), 0.0f);
  check(e.sum2.size() == static_cast<size_t>(n_in), name, "inconsistent input size {} vs {}", n_in, e.sum2.size());
  ++e.ncall;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * n_in;
    for (int64_t j = 0; j < n_in; ++j) e.sum2[static_cast<size_t>(j)] += row[j] * row[j];
  }
  e.count += static_cast<float>(n_tokens);
  for (float v : e.sum2) check(std::isfinite(v), name, "non-finite activation statistics");
  imatrix_.chunks = std::max(imatrix_.chunks, e.ncall);
}

int64_t collect_imatrix(LlamaModel& model, const std::vector<int32_t>& tokens, int64_t ctx, int64_t n_chunks,
                        int32_t bos, ImatrixCollector& collector, const std::function<void(int64_t, int64_t)>& after_chunk) {
  const int64_t max_chunks = static_cast<int64_t>(tokens.size()) / ctx;
  check(max_chunks > 0, "imatrix", "{} tokens are fewer than one chunk of {}", tokens.size(), ctx);
  const int64_t total = n_chunks < 0 ? max_chunks : std::min(n_chunks, max_chunks);
  model.set_matmul_observer(
      [&](const Tensor& w, const float* x, int64_t n) { collector.observe(w.name(), x, n, w.ne()[0]); });
  collector.imatrix().chunk_size = static_cast<int32_t>(ctx);
  std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
  for (int64_t c = 0; c < total; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
    if (bos >= 0) chunk[0] = bos;
    model.eval(chunk, 0, logits.data(), false);
    if (after_chunk) after_chunk(c + 1, total);
  }
  model.set_matmul_observer(nullptr);
  return total;
}

Imatrix parse_imatrix_dat(std::span<const uint8_t> bytes, const std::string& where) {
  ByteReader in(bytes, where);
  Imatrix m;
  const int32_t n_entries = in.read<int32_t>("entry count");
  check(n_entries >= 1, where, "no entries (count {})", n_entries);
  // Each entry takes at least 16 bytes, so a forged count cannot make us loop for long.
  check(static_cast<size_t>(n_entries) <= in.remaining() / 16, where, "entry count {} exceeds the file size",
        n_entries);
  for (int32_t i = 0; i < n_entries; ++i) {
    const int32_t len = in.read<int32_t>("name length");
    check(len > 0 && len <= 4096, where, "entry {} has a name length of {}", i, len);
    std::string name = in.read_bytes(static_cast<size_t>(len), "entry name");
    check(name.find('\0') == std::string::npos, where, "entry {} name contains a NUL byte", i);
    ImatrixEntry e;
    e.ncall = in.read<int32_t>("call count");
    const int32_t nval = in.read<int32_t>("value count");
    check(nval >= 1, where, "entry '{}' has {} values", name, nval);
    in.read_floats(e.sum2, static_cast<size_t>(nval), "entry values");
    for (size_t j = 0; j < e.sum2.size(); ++j)
      check(std::isfinite(e.sum2[j]), where, "entry '{}' value {} is not finite", name, j);
    check(e.ncall >= 0, where, "entry '{}' has a negative call count {}", name, e.ncall);
    // llama-quantize divides the stored values by ncall (when positive).
    e.count = e.ncall > 0 ? static_cast<float>(e.ncall) : 1.0f;
    check(m.entries.emplace(name, std::move(e)).second, where, "duplicate entry '{}'", name);
  }
  if (!in.at_end()) {  // newer files end with the chunk count and the dataset name
    m.chunks = in.read<int32_t>("chunk count");
    const int32_t len = in.read<int32_t>("dataset name length");
    check(len >= 0 && static_cast<size_t>(len) <= in.remaining(), where, "dataset name length {} exceeds the file",
          len);
    m.datasets.push_back(in.read_bytes(static_cast<size_t>(len), "dataset name"));
    check(in.at_end(), where, "{} unexpected bytes after the dataset name", in.remaining());
  }
  return m;
}

ImatrixFormat imatrix_format_for_path(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0 ? ImatrixFormat::Gguf : ImatrixFormat::Dat;
}

namespace {

std::string serialize_dat(const Imatrix& m) {
  std::string out;
  put<int32_t>(out, static_cast<int32_t>(m.entries.size()));
  for (const auto& [name, e] : m.entries) {  // std::map: sorted names, as newer llama.cpp writes them
    put<int32_t>(out, static_cast<int32_t>(name.size()));
    out += name;
    const int32_t ncall = e.ncall > 0 ? e.ncall : 1;
    put<int32_t>(out, ncall);
    put<int32_t>(out, static_cast<int32_t>(e.sum2.size()));
    for (float v : e.sum2) put<float>(out, e.count > 0 ? (v / e.count) * static_cast<float>(ncall) : 0.0f);
  }
  put<int32_t>(out, m.chunks);
  const std::string dataset = m.datasets.empty() ? std::string() : m.datasets.back();
  put<int32_t>(out, static_cast<int32_t>(dataset.size()));
  out += dataset;
  return out;
}

// llama-imatrix's GGUF form: `<weight>.in_sum2` [n_in, n_mat] and `<weight>.counts` [1, n_mat] F32 tensors.
Imatrix read_imatrix_gguf(const std::string& path) {
  const GgufFile g = open_gguf(path);
  Imatrix m;
  if (g.metadata.contains("imatrix.datasets")) m.datasets = g.metadata.get_strings("imatrix.datasets", path);
  m.chunks = static_cast<int32_t>(g.metadata.find_uint("imatrix.chunk_count", path).value_or(0));
  m.chunk_size = static_cast<int32_t>(g.metadata.find_uint("imatrix.chunk_size", path).value_or(0));
  const std::string sums = ".in_sum2", counts = ".counts";
  for (const auto& t : g.tensors) {
    const std::string& name = t.info.name;
    if (name.size() <= sums.size() || name.compare(name.size() - sums.size(), sums.size(), sums) != 0) continue;
    const std::string weight = name.substr(0, name.size() - sums.size());
    const GgufTensorInfo* c = g.find_tensor(weight + counts);
    check(c != nullptr, path, "'{}' has no matching '{}'", name, weight + counts);
    check(t.info.type == DType::F32 && c->info.type == DType::F32, path, "'{}': imatrix tensors must be F32", weight);
    check(t.info.ne[1] == 1 && c->info.n_elements() == 1, path,
          "'{}': per-expert imatrix data is not supported (n_mat {})", weight, t.info.ne[1]);
    ImatrixEntry e;
    e.sum2.resize(static_cast<size_t>(t.info.ne[0]));
    std::memcpy(e.sum2.data(), g.tensor(name).data, e.sum2.size() * sizeof(float));
    std::memcpy(&e.count, g.tensor(weight + counts).data, sizeof(float));
    check(e.count >= 0 && std::isfinite(e.count), path, "'{}': bad count", weight);
    for (size_t j = 0; j < e.sum2.size(); ++j)
      check(std::isfinite(e.sum2[j]), path, "entry '{}' value {} is not finite", weight, j);
    e.ncall = m.chunk_size > 0 ? static_cast<int32_t>(e.count / static_cast<float>(m.chunk_size)) : 1;
    m.entries.emplace(weight, std::move(e));
  }
  check(!m.entries.empty(), path, "no imatrix entries (no *.in_sum2 tensors)");
  return m;
}

void write_imatrix_gguf(const std::string& path, const Imatrix& m) {
  GgufMetadata meta;
  meta.set("general.type", GgufValue::of_string("imatrix"));
  meta.set("imatrix.datasets", GgufValue::of_strings(m.datasets));
  meta.set("imatrix.chunk_count", GgufValue::of_u32(static_cast<uint32_t>(m.chunks)));
  meta.set("imatrix.chunk_size", GgufValue::of_u32(static_cast<uint32_t>(m.chunk_size)));
  std::vector<Tensor> tensors;
  for (const auto& [name, e] : m.entries) {  // sorted by name, as llama-imatrix writes them
    tensors.push_back(make_f32_tensor(name + ".in_sum2", {static_cast<int64_t>(e.sum2.size()), 1}, e.sum2));
    tensors.push_back(make_f32_tensor(name + ".counts", {1, 1}, {e.count}));
  }
  write_file_atomic(path, serialize_gguf(meta, tensors));
}

}  // namespace

Imatrix read_imatrix(const std::string& path) {
  auto file = MappedFile::open(path);
  auto bytes = file->bytes();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return read_imatrix_gguf(path);
  return parse_imatrix_dat(bytes, path);
}

void write_imatrix(const std::string& path, const Imatrix& imatrix, ImatrixFormat format) {
  if (format == ImatrixFormat::Gguf) {
    write_imatrix_gguf(path, imatrix);
    return;
  }
  write_file_atomic(path, serialize_dat(imatrix));
}

}  // namespace lowbit
