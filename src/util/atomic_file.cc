#include "util/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "util/error.h"

namespace lowbit {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  fs::path target(path_);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Same directory as the target so the final rename never crosses file systems.
  temp_path_ = (dir / (".lowbit-" + target.filename().string() + "." + std::to_string(::getpid()) + ".tmp")).string();
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (file_ == nullptr) fail(path_, "cannot create output: {}", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  if (n == 0) return;
  if (std::fwrite(data, 1, n, file_) != n) fail(path_, "write failed: {}", std::strerror(errno));
  offset_ += n;
}

void AtomicFile::write_zeros(size_t n) {
  static const uint8_t zeros[4096] = {};
  while (n > 0) {
    size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
    write(zeros, k);
    n -= k;
  }
}

void AtomicFile::commit() {
  if (std::fflush(file_) != 0) fail(path_, "write failed: {}", std::strerror(errno));
  if (::fsync(::fileno(file_)) != 0) fail(path_, "fsync failed: {}", std::strerror(errno));
  int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) fail(path_, "close failed: {}", std::strerror(errno));
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail(path_, "rename failed: {}", std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  AtomicFile out(path);
  out.write(bytes);
  out.commit();
}

void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open: {}", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read failed");
  return ss.str();
}

}  // namespace lowbit
