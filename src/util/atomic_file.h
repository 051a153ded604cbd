// Output written under a temporary name beside the target and renamed over it by commit(), so an interrupted
// run never leaves a half-written file under the real name. Destroying without commit() removes the temporary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace lowbit {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws Error naming `path` if the temporary cannot be created
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws Error (e.g. disk full) naming the target path
  void write(std::span<const uint8_t> bytes) { write(bytes.data(), bytes.size()); }
  void write_zeros(size_t n);
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  // Flushes, fsyncs and renames the temporary to the final path.
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  uint64_t offset_ = 0;
  bool committed_ = false;
};

// Writes a whole small file atomically.
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
void write_file_atomic(const std::string& path, const std::string& text);

// Reads a whole small file (configs, tokenizer JSON). Throws Error naming the path.
std::string read_text_file(const std::string& path);

}  // namespace lowbit
