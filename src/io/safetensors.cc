#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

struct DTypeName {
  DType type;
  const char* name;
  int rank;  // the safetensors library's Dtype enum order; it lays tensors out by descending rank
};

constexpr DTypeName kDTypes[] = {
    {DType::BOOL, "BOOL", 0},  {DType::U8, "U8", 4},     {DType::I8, "I8", 5},     {DType::F8_E5M2, "F8_E5M2", 6},
    {DType::F8_E4M3, "F8_E4M3", 7}, {DType::I16, "I16", 9}, {DType::F16, "F16", 11}, {DType::BF16, "BF16", 12},
    {DType::I32, "I32", 13},   {DType::F32, "F32", 15},   {DType::F64, "F64", 17},  {DType::I64, "I64", 18},
};

int dtype_rank(DType type) {
  for (const auto& d : kDTypes)
    if (d.type == type) return d.rank;
  fail("safetensors", "type {} has no safetensors dtype", dtype_name(type));
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (extra < 0) return false;
    uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// Parses JSON rejecting duplicate keys at any depth (nlohmann would silently keep the last one) and nesting
// deeper than `max_depth` (a header of nested brackets would otherwise cost far more memory than its size).
json parse_json_strict(std::string_view text, const std::string& where, int max_depth) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    check(depth <= max_depth, where, "JSON is nested deeper than {} levels", max_depth);
    if (event == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == json::parse_event_t::key && !keys.empty()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail(where, "header is not valid JSON ({})", e.what());
  }
  check(duplicate.empty(), where, "header has the key '{}' twice", duplicate);
  return j;
}

uint64_t json_u64(const json& v, const std::string& where, const std::string& tensor, const char* field) {
  check(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), where,
        "tensor '{}': {} must hold non-negative integers", tensor, field);
  return v.get<uint64_t>();
}

}  // namespace

std::optional<DType> safetensors_dtype(std::string_view name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.type;
  return std::nullopt;
}

const char* safetensors_dtype_name(DType type) {
  for (const auto& d : kDTypes)
    if (d.type == type) return d.name;
  fail("safetensors", "type {} has no safetensors dtype", dtype_name(type));
}

const SafetensorsEntry* SafetensorsHeader::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.info.name == name) return &t;
  return nullptr;
}

SafetensorsHeader parse_safetensors(std::span<const uint8_t> file, const std::string& where) {
  check(file.size() >= 8, where, "file is {} bytes, too short for a safetensors header", file.size());
  const uint64_t header_len = read_u64_le(file.data());
  check(header_len <= kSafetensorsMaxHeader, where, "header length {} exceeds the {} byte limit", header_len,
        kSafetensorsMaxHeader);
  check(header_len <= file.size() - 8, where, "header length {} runs past the end of the {} byte file", header_len,
        file.size());
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), header_len);
  check(!text.empty() && text.front() == '{', where, "header does not start with '{{'");
  const json j = parse_json_strict(text, where, 3);
  check(j.is_object(), where, "header is not a JSON object");

  SafetensorsHeader h;
  h.data_offset = 8 + header_len;
  const uint64_t data_size = file.size() - h.data_offset;
  for (const auto& [key, value] : j.items()) {
    check(valid_utf8(key), where, "a tensor name is not valid UTF-8");
    if (key == "__metadata__") {
      check(value.is_object(), where, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        check(mv.is_string(), where, "__metadata__ value for '{}' is not a string", mk);
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    check(value.is_object(), where, "tensor '{}' is not an object", key);
    for (const auto& [field, _] : value.items())
      check(field == "dtype" || field == "shape" || field == "data_offsets", where,
            "tensor '{}' has unknown field '{}'", key, field);
    check(value.contains("dtype") && value["dtype"].is_string(), where, "tensor '{}' has no dtype string", key);
    check(value.contains("shape") && value["shape"].is_array(), where, "tensor '{}' has no shape array", key);
    check(value.contains("data_offsets") && value["data_offsets"].is_array() && value["data_offsets"].size() == 2,
          where, "tensor '{}' needs data_offsets [begin, end]", key);
    const auto& dtype_str = value["dtype"].get_ref<const std::string&>();
    const auto type = safetensors_dtype(dtype_str);
    check(type.has_value(), where, "tensor '{}' has unsupported dtype '{}'", key, dtype_str);
    const auto& shape = value["shape"];
    check(shape.size() <= kMaxDims, where, "tensor '{}' has {} dimensions (at most {} supported)", key, shape.size(),
          kMaxDims);

    SafetensorsEntry e;
    e.info.name = key;
    e.info.type = *type;
    e.info.n_dims = std::max<int>(1, static_cast<int>(shape.size()));
    uint64_t count = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      const uint64_t d = json_u64(shape[i], where, key, "shape");
      check(d <= static_cast<uint64_t>(INT64_MAX), where, "tensor '{}' dimension {} is too large", key, d);
      check(d == 0 || count <= UINT64_MAX / d, where, "tensor '{}' element count overflows", key);
      count *= d;
      e.shape.push_back(static_cast<int64_t>(d));
      e.info.ne[shape.size() - 1 - i] = static_cast<int64_t>(d);
    }
    const uint64_t elem = type_traits(*type).block_bytes;
    check(count <= UINT64_MAX / elem, where, "tensor '{}' byte size overflows", key);
    e.begin = json_u64(value["data_offsets"][0], where, key, "data_offsets");
    e.end = json_u64(value["data_offsets"][1], where, key, "data_offsets");
    check(e.begin <= e.end, where, "tensor '{}' data_offsets [{}, {}] are reversed", key, e.begin, e.end);
    check(e.end <= data_size, where, "tensor '{}' data_offsets [{}, {}] run past the {} byte data section", key,
          e.begin, e.end, data_size);
    check(e.end - e.begin == count * elem, where, "tensor '{}' holds {} bytes but shape {} of {} needs {}", key,
          e.end - e.begin, shape.dump(), dtype_str, count * elem);
    validate_tensor_info(e.info, where);
    h.tensors.push_back(std::move(e));
  }
  // As the safetensors library demands: the tensors tile the data section exactly, without gaps or overlaps.
  std::stable_sort(h.tensors.begin(), h.tensors.end(),
                   [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  uint64_t pos = 0;
  for (const auto& e : h.tensors) {
    check(e.begin == pos, where, "tensor '{}' data starts at {} but the previous tensor ends at {} ({})",
          e.info.name, e.begin, pos, e.begin < pos ? "overlap" : "gap");
    pos = e.end;
  }
  check(pos == data_size, where, "data section is {} bytes but the tensors cover {}", data_size, pos);
  return h;
}

// ---- SafetensorsFile ----

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto f = std::make_shared<SafetensorsFile>();
  f->file_ = MappedFile::open(path);
  f->header_ = parse_safetensors(f->file_->bytes(), path);
  return f;
}

Tensor SafetensorsFile::tensor(const SafetensorsEntry& entry) const {
  Tensor t;
  t.info = entry.info;
  t.data = file_->data() + header_.data_offset + entry.begin;
  t.owner = file_;
  return t;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto* e = header_.find(name);
  check(e != nullptr, path(), "no tensor named '{}'", name);
  return tensor(*e);
}

// ---- SafetensorsSet ----

std::unique_ptr<SafetensorsSet> SafetensorsSet::open(const std::string& path) {
  auto set = std::unique_ptr<SafetensorsSet>(new SafetensorsSet());
  set->path_ = path;
  if (path.size() >= 5 && path.ends_with(".json")) {
    const json j = parse_json_strict(read_text_file(path), path, 8);
    check(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), path,
          "index has no weight_map object");
    if (j.contains("metadata") && j["metadata"].is_object())
      for (const auto& [k, v] : j["metadata"].items())
        set->metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
    const auto dir = std::filesystem::path(path).parent_path();
    for (const auto& [name, file] : j["weight_map"].items()) {
      check(file.is_string(), path, "weight_map entry for '{}' is not a file name", name);
      const auto& f = file.get_ref<const std::string&>();
      // Shards live beside the index: refuse paths that climb out of it.
      check(!f.empty() && f.find('/') == std::string::npos && f.find('\\') == std::string::npos && f != "." &&
                f != "..",
            path, "weight_map entry for '{}' names '{}', not a file beside the index", name, f);
      set->names_.push_back(name);
      set->shard_of_[name] = (dir / f).string();
    }
    check(!set->names_.empty(), path, "index names no tensors");
  } else {
    auto f = SafetensorsFile::open(path);
    for (const auto& e : f->header().tensors) {
      set->names_.push_back(e.info.name);
      set->shard_of_[e.info.name] = path;
    }
    set->metadata_ = f->header().metadata;
    set->shards_[path] = std::move(f);
  }
  return set;
}

const SafetensorsFile& SafetensorsSet::shard(const std::string& name) const {
  const auto it = shard_of_.find(name);
  check(it != shard_of_.end(), path_, "no tensor named '{}'", name);
  auto& slot = shards_[it->second];
  if (!slot) {
    check(std::filesystem::exists(it->second), path_, "shard '{}' (holding '{}') is missing", it->second, name);
    slot = SafetensorsFile::open(it->second);
  }
  return *slot;
}

const SafetensorsEntry& SafetensorsSet::entry(const std::string& name) const {
  const auto& f = shard(name);
  const auto* e = f.header().find(name);
  check(e != nullptr, f.path(), "tensor '{}' is listed in {} but not in this shard", name, path_);
  return *e;
}

Tensor SafetensorsSet::tensor(const std::string& name) const { return shard(name).tensor(entry(name)); }

// ---- SafetensorsWriter ----

struct SafetensorsWriter::Shard {
  std::string path;
  std::vector<std::string> names;  // in data order
  std::vector<uint8_t> header;
  std::unique_ptr<AtomicFile> file;
  uint64_t data_bytes = 0;
};

namespace {

// The header exactly as the safetensors library serializes it: __metadata__ first, then every tensor in data
// order as {"dtype","shape","data_offsets"}, compact JSON padded with spaces to a multiple of 8 bytes.
std::vector<uint8_t> header_bytes(const std::vector<std::pair<TensorInfo, uint64_t>>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::string s = "{";
  bool first = true;
  if (!metadata.empty()) {
    s += "\"__metadata__\":" + json(metadata).dump();
    first = false;
  }
  for (const auto& [info, begin] : tensors) {
    if (!first) s += ",";
    first = false;
    std::string shape = "[";
    for (int i = info.n_dims - 1; i >= 0; --i) shape += std::to_string(info.ne[i]) + (i > 0 ? "," : "");
    shape += "]";
    s += json(info.name).dump() + ":{\"dtype\":\"" + safetensors_dtype_name(info.type) + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(begin + info.n_bytes()) + "]}";
  }
  s += "}";
  s.append((8 - s.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + s.size());
  uint64_t n = s.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, s.data(), s.size());
  return out;
}

}  // namespace

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorInfo> tensors,
                                     std::map<std::string, std::string> metadata, SafetensorsWriteOptions options)
    : path_(std::move(path)), metadata_(std::move(metadata)) {
  // Shards are filled in declaration order and a new one starts when the next tensor would overflow it (as
  // huggingface_hub's split_torch_state_dict_into_shards does); a tensor larger than the limit gets its own shard.
  std::vector<std::vector<TensorInfo>> groups;
  uint64_t current = 0;
  for (auto& t : tensors) {
    validate_tensor_info(t, path_);
    safetensors_dtype_name(t.type);
    check(planned_.count(t.name) == 0, path_, "tensor '{}' declared twice", t.name);
    const uint64_t n = t.n_bytes();
    if (groups.empty() || (options.max_shard_bytes > 0 && current + n > options.max_shard_bytes && current > 0)) {
      groups.emplace_back();
      current = 0;
    }
    current += n;
    total_size_ += n;
    planned_[t.name] = {groups.size() - 1, t};
    groups.back().push_back(std::move(t));
  }
  if (groups.empty()) groups.emplace_back();
  const auto dir = std::filesystem::path(path_).parent_path();
  shards_.resize(groups.size());
  for (size_t s = 0; s < groups.size(); ++s) {
    auto& g = groups[s];
    std::sort(g.begin(), g.end(), [](const TensorInfo& a, const TensorInfo& b) {
      const int ra = dtype_rank(a.type), rb = dtype_rank(b.type);
      return ra != rb ? ra > rb : a.name < b.name;
    });
    std::vector<std::pair<TensorInfo, uint64_t>> laid;
    uint64_t offset = 0;
    for (const auto& t : g) {
      laid.emplace_back(t, offset);
      offset += t.n_bytes();
      shards_[s].names.push_back(t.name);
      order_.push_back(t.name);
    }
    shards_[s].data_bytes = offset;
    shards_[s].header = header_bytes(laid, metadata_);
    shards_[s].path = groups.size() == 1 ? path_
                                         : (dir / fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1,
                                                              groups.size())).string();
  }
  open_shard(0);
}

SafetensorsWriter::~SafetensorsWriter() = default;

int SafetensorsWriter::n_shards() const { return static_cast<int>(shards_.size()); }

void SafetensorsWriter::open_shard(size_t i) {
  auto& s = shards_[i];
  s.file = std::make_unique<AtomicFile>(s.path);
  s.file->write(s.header);
  current_shard_ = i;
}

void SafetensorsWriter::write(const std::string& name, std::span<const uint8_t> bytes) {
  check(next_ < order_.size(), path_, "tensor '{}' written after every declared tensor", name);
  check(name == order_[next_], path_, "tensor '{}' written out of order (expected '{}')", name, order_[next_]);
  const auto& [shard, info] = planned_.at(name);
  check(bytes.size() == info.n_bytes(), path_, "tensor '{}' is {} bytes, expected {}", name, bytes.size(),
        info.n_bytes());
  if (shard != current_shard_) open_shard(shard);
  shards_[shard].file->write(bytes);
  ++next_;
}

std::vector<std::string> SafetensorsWriter::finish() {
  check(next_ == order_.size(), path_, "only {} of {} tensors were written", next_, order_.size());
  std::vector<std::string> paths;
  for (auto& s : shards_) {
    if (!s.file) open_shard(&s - shards_.data());  // an empty model: header only
    s.file->commit();
    paths.push_back(s.path);
  }
  if (shards_.size() > 1) {
    // As transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n".
    json weight_map = json::object();
    for (const auto& [name, plan] : planned_)
      weight_map[name] = std::filesystem::path(shards_[plan.first].path).filename().string();
    json index = {{"metadata", {{"total_size", total_size_}}}, {"weight_map", weight_map}};
    const auto index_path = (std::filesystem::path(path_).parent_path() / "model.safetensors.index.json").string();
    write_file_atomic(index_path, index.dump(2) + "\n");
    paths.push_back(index_path);
  }
  return paths;
}

}  // namespace lowbit
