// GGUF, llama.cpp's model file: header, typed key/value metadata, tensor infos, aligned tensor data.
// Described once here, read with full validation (untrusted input never crashes or over-allocates) and
// written tensor by tensor in exactly the layout ggml's gguf writer produces.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "util/atomic_file.h"
#include "util/mapped_file.h"

namespace lowbit {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
  ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars keep their GGUF type so a file re-written from its metadata is byte-identical.
struct GgufValue {
  GgufType type = GgufType::UINT32;
  uint64_t u = 0;        // unsigned integers and BOOL
  int64_t i = 0;         // signed integers
  double f = 0;          // FLOAT32 / FLOAT64
  std::string s;         // STRING
  GgufType array_type = GgufType::UINT8;
  std::vector<GgufValue> array;

  static GgufValue of_u32(uint32_t v) { GgufValue x; x.type = GgufType::UINT32; x.u = v; return x; }
  static GgufValue of_i32(int32_t v) { GgufValue x; x.type = GgufType::INT32; x.i = v; return x; }
  static GgufValue of_u64(uint64_t v) { GgufValue x; x.type = GgufType::UINT64; x.u = v; return x; }
  static GgufValue of_f32(float v) { GgufValue x; x.type = GgufType::FLOAT32; x.f = v; return x; }
  static GgufValue of_bool(bool v) { GgufValue x; x.type = GgufType::BOOL; x.u = v; return x; }
  static GgufValue of_string(std::string v) { GgufValue x; x.type = GgufType::STRING; x.s = std::move(v); return x; }
  static GgufValue of_array(GgufType element_type, std::vector<GgufValue> values);
  static GgufValue of_strings(const std::vector<std::string>& values);
  static GgufValue of_f32s(const std::vector<float>& values);
  static GgufValue of_i32s(const std::vector<int32_t>& values);

  bool is_integer() const;
  std::string to_display_string(size_t max_items = 8) const;  // for `inspect`: long arrays are summarised
};

// Ordered key/values. set() on an existing key removes it and appends the new value, as gguf_set_* does,
// so the key order of files lowbit writes follows llama.cpp's.
class GgufMetadata {
 public:
  const std::vector<std::pair<std::string, GgufValue>>& items() const { return items_; }
  const GgufValue* find(const std::string& key) const;
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  void set(const std::string& key, GgufValue value);
  void remove(const std::string& key);
  void append_unchecked(std::string key, GgufValue value) { items_.emplace_back(std::move(key), std::move(value)); }

  // Typed getters; `where` (the file) names the error for a missing key or a mismatched type.
  uint64_t get_uint(const std::string& key, const std::string& where) const;  // any integer type >= 0
  int64_t get_int(const std::string& key, const std::string& where) const;
  float get_f32(const std::string& key, const std::string& where) const;
  bool get_bool(const std::string& key, const std::string& where) const;
  const std::string& get_string(const std::string& key, const std::string& where) const;
  std::vector<std::string> get_strings(const std::string& key, const std::string& where) const;
  std::vector<float> get_f32s(const std::string& key, const std::string& where) const;
  std::vector<int32_t> get_i32s(const std::string& key, const std::string& where) const;
  std::optional<uint64_t> find_uint(const std::string& key, const std::string& where) const;
  std::optional<float> find_f32(const std::string& key, const std::string& where) const;
  std::optional<bool> find_bool(const std::string& key, const std::string& where) const;
  std::optional<std::string> find_string(const std::string& key, const std::string& where) const;

 private:
  std::vector<std::pair<std::string, GgufValue>> items_;
};

struct GgufTensorInfo {
  TensorInfo info;
  uint64_t offset = 0;  // relative to the data section
};

struct GgufFile {
  std::string path;
  uint32_t version = 3;
  GgufMetadata metadata;
  std::vector<GgufTensorInfo> tensors;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // absolute file offset of the data section
  std::shared_ptr<const MappedFile> file;  // null when parsed from bytes

  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // The tensor's bytes as a zero-copy view of the mapped file. Throws Error if absent.
  Tensor tensor(const std::string& name) const;
};

// Parses and validates a whole GGUF image. The returned file's views point into `bytes`.
GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& where);
GgufFile open_gguf(const std::string& path);

// Streaming writer: the header (metadata + tensor infos) is written up front from the tensor infos, then each
// tensor's bytes in the same order; finish() pads, syncs and renames into place.
class GgufWriter {
 public:
  GgufWriter(const std::string& path, const GgufMetadata& metadata, std::vector<TensorInfo> tensors);
  void write_tensor(std::span<const uint8_t> bytes);  // next tensor, in order; size must match its info
  void finish();
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  AtomicFile out_;
  std::vector<TensorInfo> tensors_;
  size_t next_ = 0;
  uint64_t alignment_ = 32;
};

// A whole GGUF image in memory (for tests and small files).
std::vector<uint8_t> serialize_gguf(const GgufMetadata& metadata, const std::vector<Tensor>& tensors);

}  // namespace lowbit
