#include "io/hf_tokenizer_writer.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>

#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

// Protocol-buffer wire format: just what ModelProto needs.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_tag(std::string& out, int field, int wire_type) { put_varint(out, (static_cast<uint64_t>(field) << 3) | wire_type); }
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_uint(std::string& out, int field, uint64_t v) {
  put_tag(out, field, 0);
  put_varint(out, v);
}
void put_int(std::string& out, int field, int64_t v) { put_uint(out, field, static_cast<uint64_t>(v)); }
void put_float(std::string& out, int field, float v) {
  put_tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

std::string token_text(const Vocab& v, int32_t id) { return id >= 0 && id < v.size() ? v.tokens[static_cast<size_t>(id)] : ""; }

}  // namespace

std::string sentencepiece_model_proto(const Vocab& v) {
  std::string out;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    std::string piece;
    put_bytes(piece, 1, v.tokens[i]);
    put_float(piece, 2, v.scores.empty() ? 0.0f : v.scores[i]);
    const int32_t type = v.types.empty() ? 1 : v.types[i];
    if (type != 1) put_uint(piece, 3, static_cast<uint64_t>(type));  // NORMAL is the default
    put_bytes(out, 1, piece);
  }
  std::string trainer;
  put_uint(trainer, 3, 2);  // model_type: BPE
  put_uint(trainer, 4, v.tokens.size());
  put_uint(trainer, 35, 1);  // byte_fallback
  put_int(trainer, 40, v.unk_id >= 0 ? v.unk_id : 0);
  put_int(trainer, 41, v.bos_id);
  put_int(trainer, 42, v.eos_id);
  put_int(trainer, 43, v.pad_id);
  put_bytes(out, 2, trainer);
  std::string normalizer;
  put_bytes(normalizer, 1, "identity");
  put_uint(normalizer, 3, v.add_space_prefix ? 1 : 0);  // add_dummy_prefix
  put_uint(normalizer, 4, 0);                            // remove_extra_whitespaces
  put_uint(normalizer, 5, 1);                            // escape_whitespaces
  put_bytes(out, 3, normalizer);
  return out;
}

std::vector<std::string> write_hf_tokenizer(const Vocab& v, const std::string& folder) {
  if (v.empty()) return {};
  std::vector<std::string> written;
  nlohmann::ordered_json config;
  config["add_bos_token"] = v.add_bos;
  config["add_eos_token"] = v.add_eos;
  if (v.bos_id >= 0) config["bos_token"] = token_text(v, v.bos_id);
  if (v.eos_id >= 0) config["eos_token"] = token_text(v, v.eos_id);
  if (v.unk_id >= 0) config["unk_token"] = token_text(v, v.unk_id);
  if (v.pad_id >= 0) config["pad_token"] = token_text(v, v.pad_id);
  if (v.model == "llama") {
    const std::string path = folder + "/tokenizer.model";
    write_file_atomic(path, sentencepiece_model_proto(v));
    written.push_back(path);
    config["tokenizer_class"] = "LlamaTokenizer";
    config["legacy"] = true;
  } else if (v.model == "gpt2") {
    nlohmann::ordered_json tj;
    tj["version"] = "1.0";
    tj["added_tokens"] = nlohmann::ordered_json::array();
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      vocab[v.tokens[i]] = i;
      const int32_t type = v.types.empty() ? 1 : v.types[i];
      if (type == 3 || type == 4)  // control and user-defined tokens are HF "added tokens"
        tj["added_tokens"].push_back({{"id", i}, {"content", v.tokens[i]}, {"single_word", false}, {"lstrip", false},
                                      {"rstrip", false}, {"normalized", type == 4}, {"special", type == 3}});
    }
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    tj["post_processor"] = nullptr;
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    tj["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                   {"vocab", vocab}, {"merges", v.merges}};
    const std::string path = folder + "/tokenizer.json";
    write_file_atomic(path, tj.dump(2) + "\n");
    written.push_back(path);
    config["tokenizer_class"] = "PreTrainedTokenizerFast";
    config["lowbit_pre_tokenizer"] = v.pre;  // llama.cpp's pre-tokenizer name, for readers that need it
  } else {
    fail(folder, "cannot write tokenizer files for vocabulary model '{}'", v.model);
  }
  const std::string path = folder + "/tokenizer_config.json";
  write_file_atomic(path, config.dump(2) + "\n");
  written.push_back(path);
  return written;
}

}  // namespace lowbit
