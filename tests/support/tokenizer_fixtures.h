// Shared tokenizer fixtures: the HF tokenizer folders (with the .xz tokenizer.json files unpacked once per
// process) and llama.cpp's .inp/.out tokenizer test pairs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/vocab.h"

namespace lowbit::test {

std::string shared_tokenizers_dir();  // LOWBIT_SHARED_DATA/tokenizers
// An HF tokenizer folder by name ("gpt2", "llama-3", ...), with tokenizer.json.xz unpacked into a temp copy;
// "" if the fixture (or the xz tool it needs) is absent.
std::string hf_tokenizer_folder(const std::string& name);
// The vocabulary of that folder, loaded once per process.
const Vocab& hf_vocab(const std::string& name);
// llama.cpp's ggml-vocab-<name>.gguf.inp / .out: (text, expected ids) pairs; empty if absent.
std::vector<std::pair<std::string, std::vector<int32_t>>> llama_cpp_pairs(const std::string& name);

}  // namespace lowbit::test
