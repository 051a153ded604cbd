#include "support/temp_files.h"

#include <unistd.h>

#include <fstream>
#include <iterator>

namespace lowbit::test {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::filesystem::path fresh_temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("lowbit_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace lowbit::test
