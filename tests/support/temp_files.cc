#include "support/temp_files.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace lowbit::test {
namespace {

// Every test process gets a scratch root of its own, and testing::TempDir() (which reads TEST_TMPDIR) points
// into it: tests that CTest runs side by side, or two checkouts testing at once, never write the same path.
// Removed when the process ends.
struct ProcessTempRoot {
  std::filesystem::path root;
  ProcessTempRoot() {
    const char* base = std::getenv("TMPDIR");
    root = std::filesystem::path(base && *base ? base : "/tmp") / ("lowbit-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    setenv("TEST_TMPDIR", root.c_str(), 1);
  }
  ~ProcessTempRoot() {
    std::error_code ignored;
    std::filesystem::remove_all(root, ignored);
  }
};
const ProcessTempRoot g_temp_root;

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::filesystem::path fresh_temp_dir(const std::string& name) {
  auto d = g_temp_root.root / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace lowbit::test
