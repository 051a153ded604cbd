// Hugging Face safetensors: one file (8-byte little-endian header length, a JSON header, then the data) or a
// sharded folder (model.safetensors.index.json naming the shard of every tensor). Tensors are zero-copy views
// into the mapped file. Shapes are given both as stored (PyTorch order, outermost first) and in GGUF ne order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "util/mapped_file.h"

namespace lowbit {

struct SafetensorsEntry {
  TensorInfo info;              // name as stored; ne = reversed `shape`
  std::vector<int64_t> shape;   // as stored (PyTorch order)
  uint64_t begin = 0, end = 0;  // byte offsets relative to the start of the data section
};

struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;  // __metadata__
  std::vector<SafetensorsEntry> tensors;        // in data order
  uint64_t data_offset = 0;                     // where the data section starts in the file

  const SafetensorsEntry* find(const std::string& name) const;
};

constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;

// Parses and validates a whole safetensors file held in `file` (the header and that the data section matches it
// exactly). Throws Error naming `where` on anything malformed. The fuzz entry point.
SafetensorsHeader parse_safetensors(std::span<const uint8_t> file, const std::string& where);

// Safetensors dtype string <-> DType ("F16", "BF16", "F8_E4M3", ...).
std::optional<DType> safetensors_dtype(std::string_view name);
const char* safetensors_dtype_name(DType type);  // throws Error for a type safetensors has no name for

class SafetensorsFile {
 public:
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);
  const std::string& path() const { return file_->path(); }
  const SafetensorsHeader& header() const { return header_; }
  // A view into the mapping (name as stored). Throws Error naming the file if absent.
  Tensor tensor(const std::string& name) const;
  Tensor tensor(const SafetensorsEntry& entry) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  SafetensorsHeader header_;
};

// One file or a sharded set seen as one set of tensors. Shards are opened on first use.
class SafetensorsSet {
 public:
  // `path` is a .safetensors file or a model.safetensors.index.json.
  static std::unique_ptr<SafetensorsSet> open(const std::string& path);
  const std::string& path() const { return path_; }
  // Tensor names in the index (sorted), or in data order for a single file.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return shard_of_.count(name) != 0; }
  // __metadata__ of the first shard (for an index: the index's "metadata" object, stringified values).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry& entry(const std::string& name) const;
  Tensor tensor(const std::string& name) const;

 private:
  const SafetensorsFile& shard(const std::string& name) const;
  std::string path_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> shard_of_;  // tensor name -> shard path
  std::map<std::string, std::string> metadata_;
  mutable std::map<std::string, std::shared_ptr<const SafetensorsFile>> shards_;
};

struct SafetensorsWriteOptions {
  uint64_t max_shard_bytes = 5'000'000'000ull;  // tensor bytes per shard (as HF's "5GB"); 0 = never shard
};

// Writes a model as HF does: tensors declared up front (in the order they should be sharded), then their bytes
// written one at a time in `write_order()` (per shard: descending dtype alignment, then name, as the
// safetensors library lays them out). One file `path` if it all fits one shard, else
// <dir>/model-0000i-of-0000N.safetensors plus <dir>/model.safetensors.index.json (`path` names the directory's
// would-be single file, e.g. out/model.safetensors). Every file goes through AtomicFile.
class SafetensorsWriter {
 public:
  // `tensors`: name, type and GGUF ne (written as the reversed shape).
  SafetensorsWriter(std::string path, std::vector<TensorInfo> tensors, std::map<std::string, std::string> metadata,
                    SafetensorsWriteOptions options = {});
  ~SafetensorsWriter();
  const std::vector<std::string>& write_order() const { return order_; }
  // The next tensor in write_order(); `bytes` must be its exact size.
  void write(const std::string& name, std::span<const uint8_t> bytes);
  // After every tensor is written: commits every file. Returns the paths written.
  std::vector<std::string> finish();
  int n_shards() const;

 private:
  struct Shard;
  void open_shard(size_t i);
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<Shard> shards_;
  std::vector<std::string> order_;
  size_t next_ = 0;
  size_t current_shard_ = 0;
  std::map<std::string, std::pair<size_t, TensorInfo>> planned_;  // name -> shard, info
  uint64_t total_size_ = 0;
};

}  // namespace lowbit
