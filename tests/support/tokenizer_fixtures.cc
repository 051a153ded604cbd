#include "support/tokenizer_fixtures.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include "model/vocab_loaders.h"
#include "support/temp_files.h"
#include "util/atomic_file.h"

namespace lowbit::test {

namespace fs = std::filesystem;

std::string shared_tokenizers_dir() { return std::string(LOWBIT_SHARED_DATA) + "/tokenizers"; }

std::string hf_tokenizer_folder(const std::string& name) {
  const fs::path src = fs::path(shared_tokenizers_dir()) / "hf" / name;
  if (!fs::exists(src)) return "";
  if (!fs::exists(src / "tokenizer.json.xz")) return src.string();
  const fs::path dst = fresh_temp_dir("tokenizer-" + name);
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().extension() != ".xz" && e.path().filename() != "tokenizer.model")
      fs::copy_file(e.path(), dst / e.path().filename());
  const std::string cmd =
      "xz -dc '" + (src / "tokenizer.json.xz").string() + "' > '" + (dst / "tokenizer.json").string() + "'";
  if (std::system(cmd.c_str()) != 0) return "";
  return dst.string();
}

const Vocab& hf_vocab(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, Vocab> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string folder = hf_tokenizer_folder(name);
    it = cache.emplace(name, folder.empty() ? Vocab{} : load_hf_vocab(folder)).first;
  }
  return it->second;
}

std::vector<std::pair<std::string, std::vector<int32_t>>> llama_cpp_pairs(const std::string& name) {
  const std::string base = shared_tokenizers_dir() + "/llama.cpp-vocab/ggml-vocab-" + name + ".gguf";
  if (!fs::exists(base + ".inp") || !fs::exists(base + ".out")) return {};
  const std::string inp = read_text_file(base + ".inp"), out = read_text_file(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::pair<std::string, std::vector<int32_t>>> pairs;
  for (size_t pos = 0; pos < inp.size();) {
    size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    pairs.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& p : pairs) {
    if (!std::getline(lines, line)) return {};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) p.second.push_back(id);
  }
  return pairs;
}

}  // namespace lowbit::test
