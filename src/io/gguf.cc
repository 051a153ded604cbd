#include "io/gguf.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>

#include "util/error.h"

namespace lowbit {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 99;
    if (extra == 99 || i + extra >= s.size() + (extra == 0)) return false;
    for (size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += extra + 1;
  }
  return true;
}

uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

// Bounds-checked cursor over the file image: every read names the file and the byte offset on failure.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const std::string& where) : b_(b), where_(where) {}
  template <typename T>
  T read(const char* what) {
    check(b_.size() - pos_ >= sizeof(T), where_, "truncated: {} at byte {} runs past the end ({} bytes)", what, pos_,
          b_.size());
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    check(n <= kMaxStringBytes && n <= b_.size() - pos_, where_, "{} of {} bytes at byte {} runs past the end", what,
          n, pos_);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  size_t remaining() const { return b_.size() - pos_; }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> b_;
  const std::string& where_;
  size_t pos_ = 0;
};

GgufValue read_value(Cursor& in, GgufType type, int depth, const std::string& where, const std::string& key) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::UINT8: v.u = in.read<uint8_t>("value"); break;
    case GgufType::INT8: v.i = in.read<int8_t>("value"); break;
    case GgufType::UINT16: v.u = in.read<uint16_t>("value"); break;
    case GgufType::INT16: v.i = in.read<int16_t>("value"); break;
    case GgufType::UINT32: v.u = in.read<uint32_t>("value"); break;
    case GgufType::INT32: v.i = in.read<int32_t>("value"); break;
    case GgufType::UINT64: v.u = in.read<uint64_t>("value"); break;
    case GgufType::INT64: v.i = in.read<int64_t>("value"); break;
    case GgufType::FLOAT32: v.f = in.read<float>("value"); break;
    case GgufType::FLOAT64: v.f = in.read<double>("value"); break;
    case GgufType::BOOL: {
      const uint8_t b = in.read<uint8_t>("value");
      check(b <= 1, where, "key '{}': bool value {} is not 0 or 1", key, b);
      v.u = b;
      break;
    }
    case GgufType::STRING: v.s = in.read_string("string value"); break;
    case GgufType::ARRAY: {
      check(depth < kMaxArrayDepth, where, "key '{}': arrays nested deeper than {}", key, kMaxArrayDepth);
      const uint32_t et = in.read<uint32_t>("array type");
      check(valid_type(et), where, "key '{}': unknown array element type {}", key, et);
      v.array_type = static_cast<GgufType>(et);
      const uint64_t n = in.read<uint64_t>("array length");
      // Every element takes at least one byte (8 for strings and arrays), so the count is bounded by what is left.
      const size_t min_size = scalar_size(v.array_type) ? scalar_size(v.array_type) : 8;
      check(n <= in.remaining() / min_size, where, "key '{}': array of {} elements is larger than the file", key, n);
      v.array.reserve(static_cast<size_t>(n));
      for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(in, v.array_type, depth + 1, where, key));
      break;
    }
  }
  return v;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::UINT8: put<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case GgufType::INT8: put<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case GgufType::UINT16: put<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case GgufType::INT16: put<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case GgufType::UINT32: put<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case GgufType::INT32: put<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case GgufType::UINT64: put<uint64_t>(out, v.u); break;
    case GgufType::INT64: put<int64_t>(out, v.i); break;
    case GgufType::FLOAT32: put<float>(out, static_cast<float>(v.f)); break;
    case GgufType::FLOAT64: put<double>(out, v.f); break;
    case GgufType::BOOL: put<uint8_t>(out, v.u ? 1 : 0); break;
    case GgufType::STRING: put_string(out, v.s); break;
    case GgufType::ARRAY:
      put<uint32_t>(out, static_cast<uint32_t>(v.array_type));
      put<uint64_t>(out, v.array.size());
      for (const auto& e : v.array) put_value(out, e);
      break;
  }
}

uint64_t alignment_of(const GgufMetadata& m, const std::string& where) {
  const auto a = m.find_uint("general.alignment", where);
  if (!a) return 32;
  check(*a > 0 && (*a & (*a - 1)) == 0 && *a <= (uint64_t{1} << 20), where, "general.alignment {} is not a power of two",
        *a);
  return *a;
}

// Header bytes (through the padding before the data section) for these tensors, laid out as ggml does.
std::string serialize_header(const GgufMetadata& metadata, const std::vector<TensorInfo>& tensors, uint64_t alignment) {
  std::string out;
  put<uint32_t>(out, kMagic);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors.size());
  put<uint64_t>(out, metadata.items().size());
  for (const auto& [key, value] : metadata.items()) {
    put_string(out, key);
    put<uint32_t>(out, static_cast<uint32_t>(value.type));
    put_value(out, value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.n_dims));
    for (int d = 0; d < t.n_dims; ++d) put<uint64_t>(out, static_cast<uint64_t>(t.ne[d]));
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset += pad_to(t.n_bytes(), alignment);
  }
  out.resize(pad_to(out.size(), alignment), '\0');
  return out;
}

void check_writable(const std::vector<TensorInfo>& tensors, const std::string& where) {
  std::unordered_set<std::string> names;
  for (const auto& t : tensors) {
    check(names.insert(t.name).second, where, "duplicate tensor name '{}'", t.name);
    check(static_cast<uint32_t>(t.type) < 1000, where, "tensor '{}': type {} cannot be stored in GGUF", t.name,
          dtype_name(t.type));
    validate_tensor_info(t, where);
  }
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

GgufValue GgufValue::of_array(GgufType element_type, std::vector<GgufValue> values) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.array_type = element_type;
  x.array = std::move(values);
  return x;
}
GgufValue GgufValue::of_strings(const std::vector<std::string>& values) {
  std::vector<GgufValue> v;
  v.reserve(values.size());
  for (const auto& s : values) v.push_back(of_string(s));
  return of_array(GgufType::STRING, std::move(v));
}
GgufValue GgufValue::of_f32s(const std::vector<float>& values) {
  std::vector<GgufValue> v;
  v.reserve(values.size());
  for (float f : values) v.push_back(of_f32(f));
  return of_array(GgufType::FLOAT32, std::move(v));
}
GgufValue GgufValue::of_i32s(const std::vector<int32_t>& values) {
  std::vector<GgufValue> v;
  v.reserve(values.size());
  for (int32_t i : values) v.push_back(of_i32(i));
  return of_array(GgufType::INT32, std::move(v));
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16: case GgufType::UINT32:
    case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
    default: return false;
  }
}

std::string GgufValue::to_display_string(size_t max_items) const {
  switch (type) {
    case GgufType::STRING: return s.size() > 80 ? fmt::format("\"{}...\" ({} bytes)", s.substr(0, 60), s.size()) : "\"" + s + "\"";
    case GgufType::FLOAT32: case GgufType::FLOAT64: return fmt::format("{:g}", f);
    case GgufType::BOOL: return u ? "true" : "false";
    case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64: return std::to_string(i);
    case GgufType::ARRAY: {
      std::string out = fmt::format("[{} x {}]", array.size(), gguf_type_name(array_type));
      for (size_t k = 0; k < array.size() && k < max_items; ++k) out += (k ? ", " : " ") + array[k].to_display_string(0);
      if (array.size() > max_items && max_items > 0) out += ", ...";
      return out;
    }
    default: return std::to_string(u);
  }
}

const GgufValue* GgufMetadata::find(const std::string& key) const {
  for (const auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}

void GgufMetadata::set(const std::string& key, GgufValue value) {
  remove(key);
  items_.emplace_back(key, std::move(value));
}

void GgufMetadata::remove(const std::string& key) {
  items_.erase(std::remove_if(items_.begin(), items_.end(), [&](const auto& kv) { return kv.first == key; }),
               items_.end());
}

namespace {
const GgufValue& require(const GgufMetadata& m, const std::string& key, const std::string& where) {
  const GgufValue* v = m.find(key);
  check(v != nullptr, where, "missing metadata key '{}'", key);
  return *v;
}
}  // namespace

uint64_t GgufMetadata::get_uint(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.is_integer(), where, "key '{}' is a {}, expected an integer", key, gguf_type_name(v.type));
  const bool is_signed = v.type == GgufType::INT8 || v.type == GgufType::INT16 || v.type == GgufType::INT32 ||
                         v.type == GgufType::INT64;
  check(!is_signed || v.i >= 0, where, "key '{}' is negative ({})", key, v.i);
  return is_signed ? static_cast<uint64_t>(v.i) : v.u;
}
int64_t GgufMetadata::get_int(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.is_integer(), where, "key '{}' is a {}, expected an integer", key, gguf_type_name(v.type));
  if (v.type == GgufType::INT8 || v.type == GgufType::INT16 || v.type == GgufType::INT32 || v.type == GgufType::INT64)
    return v.i;
  check(v.u <= static_cast<uint64_t>(INT64_MAX), where, "key '{}' is too large", key);
  return static_cast<int64_t>(v.u);
}
float GgufMetadata::get_f32(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.type == GgufType::FLOAT32 || v.type == GgufType::FLOAT64, where, "key '{}' is a {}, expected a float", key,
        gguf_type_name(v.type));
  return static_cast<float>(v.f);
}
bool GgufMetadata::get_bool(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.type == GgufType::BOOL, where, "key '{}' is a {}, expected a bool", key, gguf_type_name(v.type));
  return v.u != 0;
}
const std::string& GgufMetadata::get_string(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.type == GgufType::STRING, where, "key '{}' is a {}, expected a string", key, gguf_type_name(v.type));
  return v.s;
}
std::vector<std::string> GgufMetadata::get_strings(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.type == GgufType::ARRAY && v.array_type == GgufType::STRING, where, "key '{}' is not an array of strings", key);
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(e.s);
  return out;
}
std::vector<float> GgufMetadata::get_f32s(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.type == GgufType::ARRAY && v.array_type == GgufType::FLOAT32, where, "key '{}' is not an array of f32", key);
  std::vector<float> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(static_cast<float>(e.f));
  return out;
}
std::vector<int32_t> GgufMetadata::get_i32s(const std::string& key, const std::string& where) const {
  const GgufValue& v = require(*this, key, where);
  check(v.type == GgufType::ARRAY && (v.array_type == GgufType::INT32 || v.array_type == GgufType::UINT32), where,
        "key '{}' is not an array of 32-bit integers", key);
  std::vector<int32_t> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(static_cast<int32_t>(v.array_type == GgufType::INT32 ? e.i : static_cast<int64_t>(e.u)));
  return out;
}
std::optional<uint64_t> GgufMetadata::find_uint(const std::string& key, const std::string& where) const {
  return contains(key) ? std::optional(get_uint(key, where)) : std::nullopt;
}
std::optional<float> GgufMetadata::find_f32(const std::string& key, const std::string& where) const {
  return contains(key) ? std::optional(get_f32(key, where)) : std::nullopt;
}
std::optional<bool> GgufMetadata::find_bool(const std::string& key, const std::string& where) const {
  return contains(key) ? std::optional(get_bool(key, where)) : std::nullopt;
}
std::optional<std::string> GgufMetadata::find_string(const std::string& key, const std::string& where) const {
  return contains(key) ? std::optional(get_string(key, where)) : std::nullopt;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.info.name == name) return &t;
  return nullptr;
}

Tensor GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  check(t != nullptr, path, "no tensor named '{}'", name);
  Tensor out;
  out.info = t->info;
  out.data = (file ? file->data() : nullptr) + data_offset + t->offset;
  out.owner = file;
  return out;
}

GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& where) {
  Cursor in(bytes, where);
  GgufFile g;
  g.path = where;
  check(in.read<uint32_t>("magic") == kMagic, where, "not a GGUF file (bad magic)");
  g.version = in.read<uint32_t>("version");
  check(g.version == 2 || g.version == 3, where, "GGUF version {} is not supported (2 or 3)", g.version);
  const uint64_t n_tensors = in.read<uint64_t>("tensor count");
  const uint64_t n_kv = in.read<uint64_t>("metadata count");
  // A key/value takes at least 13 bytes and a tensor info at least 28: forged counts fail here, before any loop.
  check(n_kv <= in.remaining() / 13, where, "metadata count {} is larger than the file allows", n_kv);
  check(n_tensors <= in.remaining() / 28, where, "tensor count {} is larger than the file allows", n_tensors);

  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = in.read_string("metadata key");
    check(!key.empty(), where, "metadata key {} is empty", k);
    check(valid_utf8(key), where, "metadata key {} is not valid UTF-8", k);
    check(keys.insert(key).second, where, "duplicate metadata key '{}'", key);
    const uint32_t type = in.read<uint32_t>("value type");
    check(valid_type(type), where, "key '{}': unknown value type {}", key, type);
    GgufValue value = read_value(in, static_cast<GgufType>(type), 0, where, key);
    g.metadata.append_unchecked(std::move(key), std::move(value));
  }
  g.alignment = alignment_of(g.metadata, where);

  std::unordered_set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.info.name = in.read_string("tensor name");
    check(!t.info.name.empty() && t.info.name.size() < 64 * 1024, where, "tensor {} has an invalid name", k);
    check(valid_utf8(t.info.name), where, "tensor {} name is not valid UTF-8", k);
    check(names.insert(t.info.name).second, where, "duplicate tensor name '{}'", t.info.name);
    const uint32_t n_dims = in.read<uint32_t>("dimension count");
    check(n_dims >= 1 && n_dims <= kMaxDims, where, "tensor '{}' has {} dimensions (1 to {} supported)", t.info.name,
          n_dims, kMaxDims);
    t.info.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = in.read<uint64_t>("dimension");
      check(ne <= static_cast<uint64_t>(INT64_MAX), where, "tensor '{}' dimension {} is too large", t.info.name, ne);
      t.info.ne[d] = static_cast<int64_t>(ne);
    }
    const uint32_t type = in.read<uint32_t>("tensor type");
    const auto dtype = dtype_from_id(type);
    check(dtype.has_value() && type < 1000, where, "tensor '{}' has unknown type id {}", t.info.name, type);
    t.info.type = *dtype;
    validate_tensor_info(t.info, where);
    t.offset = in.read<uint64_t>("tensor offset");
    check(t.offset % g.alignment == 0, where, "tensor '{}' offset {} is not aligned to {}", t.info.name, t.offset,
          g.alignment);
    g.tensors.push_back(std::move(t));
  }
  g.data_offset = pad_to(in.pos(), g.alignment);
  const uint64_t data_size = bytes.size() >= g.data_offset ? bytes.size() - g.data_offset : 0;
  check(g.tensors.empty() || bytes.size() >= g.data_offset, where, "file ends before its data section");
  // Tensor data must lie inside the file and not overlap.
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& t : g.tensors) {
    const uint64_t n = t.info.n_bytes();
    check(t.offset <= data_size && n <= data_size - t.offset, where,
          "tensor '{}' data [{}, {}) extends past the end of the data section ({} bytes)", t.info.name, t.offset,
          t.offset + n, data_size);
    spans.emplace_back(t.offset, t.offset + n);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k)
    check(spans[k].first >= spans[k - 1].second, where, "tensor data overlaps at offset {}", spans[k].first);
  return g;
}

GgufFile open_gguf(const std::string& path) {
  auto file = MappedFile::open(path);
  GgufFile g = parse_gguf(file->bytes(), path);
  g.file = std::move(file);
  return g;
}

GgufWriter::GgufWriter(const std::string& path, const GgufMetadata& metadata, std::vector<TensorInfo> tensors)
    : out_(path), tensors_(std::move(tensors)) {
  check_writable(tensors_, path);
  alignment_ = alignment_of(metadata, path);
  const std::string header = serialize_header(metadata, tensors_, alignment_);
  out_.write(header.data(), header.size());
}

void GgufWriter::write_tensor(std::span<const uint8_t> bytes) {
  check(next_ < tensors_.size(), out_.path(), "more tensors written than declared");
  const TensorInfo& t = tensors_[next_];
  check(bytes.size() == t.n_bytes(), out_.path(), "tensor '{}': {} bytes given, {} expected", t.name, bytes.size(),
        t.n_bytes());
  out_.write(bytes);
  out_.write_zeros(pad_to(bytes.size(), alignment_) - bytes.size());
  ++next_;
}

void GgufWriter::finish() {
  check(next_ == tensors_.size(), out_.path(), "only {} of {} tensors were written", next_, tensors_.size());
  out_.commit();
}

std::vector<uint8_t> serialize_gguf(const GgufMetadata& metadata, const std::vector<Tensor>& tensors) {
  std::vector<TensorInfo> infos;
  for (const auto& t : tensors) infos.push_back(t.info);
  check_writable(infos, "gguf");
  const uint64_t alignment = alignment_of(metadata, "gguf");
  const std::string header = serialize_header(metadata, infos, alignment);
  std::vector<uint8_t> out(header.begin(), header.end());
  for (const auto& t : tensors) {
    const auto b = t.bytes();
    out.insert(out.end(), b.begin(), b.end());
    out.resize(pad_to(out.size(), alignment), 0);
  }
  return out;
}

}  // namespace lowbit
