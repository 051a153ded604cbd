// Small file helpers for tests: whole-file reads and per-process scratch folders.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lowbit::test {

std::vector<uint8_t> read_file_bytes(const std::string& path);
// An empty folder unique to this process and `name` (emptied if it exists), under the process's scratch root
// (which testing::TempDir() also returns).
std::filesystem::path fresh_temp_dir(const std::string& name);

}  // namespace lowbit::test
