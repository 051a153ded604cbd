#include "model/vocab_loaders.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace lowbit {
namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

std::string escape_spaces(const std::string& s) {
  std::string out;
  for (char c : s) out += c == ' ' ? std::string(kSpace) : std::string(1, c);
  return out;
}

// Minimal protobuf reader: varints, 32-bit floats and length-delimited fields, all bounds-checked.
class ProtoReader {
 public:
  ProtoReader(const uint8_t* p, size_t n, const std::string& where) : p_(p), end_(p + n), where_(where) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      check(p_ < end_, where_, "truncated protobuf varint");
      const uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(where_, "protobuf varint longer than 10 bytes");
  }
  float fixed32() {
    check(end_ - p_ >= 4, where_, "truncated protobuf float");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  ProtoReader bytes() {
    const uint64_t n = varint();
    check(n <= static_cast<uint64_t>(end_ - p_), where_, "protobuf field of {} bytes runs past the end", n);
    ProtoReader sub(p_, static_cast<size_t>(n), where_);
    p_ += n;
    return sub;
  }
  std::string string() {
    ProtoReader b = bytes();
    return std::string(reinterpret_cast<const char*>(b.p_), static_cast<size_t>(b.end_ - b.p_));
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: check(end_ - p_ >= 8, where_, "truncated protobuf field"); p_ += 8; break;
      case 2: bytes(); break;
      case 5: fixed32(); break;
      default: fail(where_, "unsupported protobuf wire type {}", wire_type);
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& where_;
};

}  // namespace

Vocab load_sentencepiece_vocab(const std::string& path) {
  auto file = MappedFile::open(path);
  ProtoReader in(file->data(), file->size(), path);
  Vocab v;
  v.model = "llama";
  v.pre = "default";
  v.bos_id = 1, v.eos_id = 2, v.unk_id = 0, v.pad_id = -1;  // SentencePiece's defaults
  bool have_trainer = false, have_normalizer = false;
  while (!in.done()) {
    const uint64_t tag = in.varint();
    const int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (field == 1 && wire == 2) {  // SentencePiece piece
      ProtoReader p = in.bytes();
      std::string piece;
      float score = 0;
      int32_t type = 1;
      while (!p.done()) {
        const uint64_t t = p.varint();
        const int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
        if (f == 1 && w == 2) piece = p.string();
        else if (f == 2 && w == 5) score = p.fixed32();
        else if (f == 3 && w == 0) type = static_cast<int32_t>(p.varint());
        else p.skip(w);
      }
      check(type >= 1 && type <= 6, path, "piece {} has unknown type {}", v.tokens.size(), type);
      v.tokens.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(type);  // SentencePiece's and GGUF's token type numbers coincide
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      have_trainer = true;
      ProtoReader t = in.bytes();
      while (!t.done()) {
        const uint64_t tag2 = t.varint();
        const int f = static_cast<int>(tag2 >> 3), w = static_cast<int>(tag2 & 7);
        if (w == 0 && f >= 40 && f <= 43) {
          const auto id = static_cast<int32_t>(static_cast<int64_t>(t.varint()));
          (f == 40 ? v.unk_id : f == 41 ? v.bos_id : f == 42 ? v.eos_id : v.pad_id) = id;
        } else {
          t.skip(w);
        }
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      have_normalizer = true;
      ProtoReader n = in.bytes();
      while (!n.done()) {
        const uint64_t tag2 = n.varint();
        const int f = static_cast<int>(tag2 >> 3), w = static_cast<int>(tag2 & 7);
        if (f == 3 && w == 0) v.add_space_prefix = n.varint() != 0;
        else n.skip(w);
      }
    } else {
      in.skip(wire);
    }
  }
  check(!v.tokens.empty(), path, "no pieces: not a SentencePiece model");
  // SentencePiece always writes both specs after the pieces: a file without them was cut short.
  check(have_trainer && have_normalizer, path, "no {} (truncated SentencePiece model?)",
        have_trainer ? "normalizer_spec" : "trainer_spec");
  for (int32_t* id : {&v.unk_id, &v.bos_id, &v.eos_id, &v.pad_id})
    if (*id >= v.size()) *id = -1;
  v.add_bos = true;
  return v;
}

Vocab load_llama2c_vocab(const std::string& path, int64_t vocab_size) {
  auto file = MappedFile::open(path);
  const uint8_t* p = file->data();
  size_t left = file->size();
  auto take = [&](void* dst, size_t n, const char* what) {
    check(left >= n, path, "truncated while reading {}", what);
    std::memcpy(dst, p, n);
    p += n, left -= n;
  };
  check(vocab_size > 0 && vocab_size <= (1 << 24), path, "vocabulary size {} is not plausible", vocab_size);
  int32_t max_len = 0;
  take(&max_len, 4, "max token length");
  check(max_len > 0 && max_len < 4096, path, "max token length {} is not plausible", max_len);
  Vocab v;
  v.model = "llama";
  v.pre = "default";
  v.unk_id = 0, v.bos_id = 1, v.eos_id = 2;
  v.add_bos = true;
  for (int64_t i = 0; i < vocab_size; ++i) {
    float score;
    int32_t len;
    take(&score, 4, "token score");
    take(&len, 4, "token length");
    check(len >= 0 && len <= max_len, path, "token {} has length {} (max {})", i, len, max_len);
    std::string text(static_cast<size_t>(len), '\0');
    take(text.data(), static_cast<size_t>(len), "token text");
    // As llama.cpp's llama2.c converter: fixed names for the specials, byte tokens kept, spaces made visible.
    int32_t type = 1;
    unsigned byte;
    char tail;
    if (i == 0) text = "<unk>", type = 2;
    else if (i == 1) text = "<s>", type = 3;
    else if (i == 2) text = "</s>", type = 3;
    else if (text.empty()) type = 3;
    else if (std::sscanf(text.c_str(), "<0x%2X>%c", &byte, &tail) == 1 && text.size() == 6) type = 6;
    v.tokens.push_back(type == 1 ? escape_spaces(text) : text);
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  check(left == 0, path, "{} unexpected bytes after {} tokens (wrong vocabulary size?)", left, vocab_size);
  return v;
}

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json parse_json_file(const fs::path& path) {
  try {
    return json::parse(read_text_file(path.string()));
  } catch (const json::exception& e) {
    fail(path.string(), "not valid JSON: {}", e.what());
  }
}

// A special token in tokenizer_config.json / special_tokens_map.json: a string or {"content": ...}.
std::string token_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return "";
}

// llama.cpp's converter treats added tokens that look like markup as control tokens even when not flagged special.
bool looks_special(const std::string& t) {
  if (t.size() >= 4 && t.starts_with("<|") && t.ends_with("|>")) return true;
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]";
}

bool is_byte_token(const std::string& t) {
  unsigned b;
  return t.size() == 6 && std::sscanf(t.c_str(), "<0x%2X>", &b) == 1 && t.ends_with(">");
}

// Places an added token at its id (growing the vocabulary with unused [PADn] entries when there is a gap).
void set_added_token(Vocab& v, int64_t id, const std::string& text, bool special, const std::string& where) {
  check(id >= 0 && id < (int64_t{1} << 24), where, "added token '{}' has id {}", text, id);
  while (v.size() <= id) {
    v.tokens.push_back(fmt::format("[PAD{}]", v.size()));
    v.types.push_back(static_cast<int32_t>(TokenType::Unused));
    if (!v.scores.empty()) v.scores.push_back(0.0f);
  }
  v.tokens[static_cast<size_t>(id)] = text;
  v.types[static_cast<size_t>(id)] =
      static_cast<int32_t>(special || looks_special(text) ? TokenType::Control : TokenType::UserDefined);
}

// model.vocab {token: id} into tokens ordered by id; every id below the largest must be present.
void read_vocab_map(Vocab& v, const json& vocab, const std::string& where) {
  check(vocab.is_object(), where, "the vocabulary is not a JSON object");
  std::vector<std::pair<int64_t, std::string>> entries;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    check(it.value().is_number_integer(), where, "vocabulary entry '{}' has no integer id", it.key());
    entries.emplace_back(it.value().get<int64_t>(), it.key());
  }
  std::sort(entries.begin(), entries.end());
  for (size_t i = 0; i < entries.size(); ++i)
    check(entries[i].first == static_cast<int64_t>(i), where, "vocabulary ids are not 0..{} (found {} at {})",
          entries.size() - 1, entries[i].first, i);
  v.tokens.reserve(entries.size());
  for (auto& e : entries) v.tokens.push_back(std::move(e.second));
  v.types.assign(v.tokens.size(), static_cast<int32_t>(TokenType::Normal));
}

void read_merges(Vocab& v, const json& merges, const std::string& where) {
  check(merges.is_array(), where, "model.merges is not an array");
  v.merges.reserve(merges.size());
  for (const auto& m : merges) {
    if (m.is_string()) {
      v.merges.push_back(m.get<std::string>());
    } else {
      check(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), where,
            "merge {} is neither \"a b\" nor [a, b]", v.merges.size());
      v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
  }
}

// Every pre-tokenizer of tokenizer.json, flattening Sequence.
void collect_pre(const json& j, std::vector<json>& out) {
  if (!j.is_object()) return;
  if (j.value("type", "") == "Sequence" && j.contains("pretokenizers") && j["pretokenizers"].is_array()) {
    for (const auto& p : j["pretokenizers"]) collect_pre(p, out);
  } else {
    out.push_back(j);
  }
}

// tokenizer.ggml.pre as llama.cpp's converter would choose it; the converter hashes a test encoding, we recognise
// the pre-tokenizer itself.
std::string detect_pre(const json& tj) {
  std::vector<json> pres;
  if (tj.contains("pre_tokenizer")) collect_pre(tj["pre_tokenizer"], pres);
  std::string regex;
  bool digits = false, byte_level = false;
  for (const auto& p : pres) {
    const std::string type = p.value("type", "");
    if (type == "Split" && p.contains("pattern") && p["pattern"].is_object()) regex = p["pattern"].value("Regex", "");
    if (type == "Digits" && p.value("individual_digits", false)) digits = true;
    if (type == "ByteLevel") byte_level = true;
  }
  if (regex.find("\\p{N}{1,3}") != std::string::npos && regex.find("(?i:'s") != std::string::npos) return "llama-bpe";
  if (regex.find("(?i:'s") != std::string::npos && regex.find("\\p{N}|") != std::string::npos) return "qwen2";
  if (regex.empty() && digits && byte_level) return "smollm";
  if (regex.empty() && byte_level) return "gpt-2";
  return "default";
}

bool is_spm_style(const json& tj) {
  const json& model = tj["model"];
  if (model.value("byte_fallback", false)) return true;
  const std::string dump = tj.contains("normalizer") ? tj["normalizer"].dump() : "";
  const std::string pre = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"].dump() : "";
  return dump.find("\xE2\x96\x81") != std::string::npos || pre.find("Metaspace") != std::string::npos;
}

// SentencePiece-style tokenizer.json (Llama-2 BPE with byte fallback) without a tokenizer.model.
Vocab spm_from_tokenizer_json(const json& tj, const std::string& where) {
  Vocab v;
  v.model = "llama";
  v.pre = "default";
  v.add_bos = true;
  const json& model = tj["model"];
  read_vocab_map(v, model.at("vocab"), where);
  if (model.contains("merges")) read_merges(v, model["merges"], where);
  // Scores: a merged token scores minus its merge rank, so SentencePiece's highest-score-first order equals BPE's.
  v.scores.assign(v.tokens.size(), 0.0f);
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < v.tokens.size(); ++i) ids.emplace(v.tokens[i], static_cast<int32_t>(i));
  for (size_t r = 0; r < v.merges.size(); ++r) {
    const std::string& m = v.merges[r];
    const size_t sp = m.find(' ');
    if (sp == std::string::npos) continue;
    const auto it = ids.find(m.substr(0, sp) + m.substr(sp + 1));
    if (it != ids.end() && v.scores[static_cast<size_t>(it->second)] == 0.0f)
      v.scores[static_cast<size_t>(it->second)] = -static_cast<float>(r + 1);
  }
  v.merges.clear();
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (is_byte_token(v.tokens[i])) v.types[i] = static_cast<int32_t>(TokenType::Byte);
  const std::string unk = model.contains("unk_token") ? token_text(model["unk_token"]) : "";
  if (const auto it = ids.find(unk); !unk.empty() && it != ids.end()) {
    v.unk_id = it->second;
    v.types[static_cast<size_t>(it->second)] = static_cast<int32_t>(TokenType::Unknown);
  }
  const std::string norm = tj.contains("normalizer") ? tj["normalizer"].dump() : "";
  const std::string pre = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"].dump() : "";
  v.add_space_prefix = norm.find("Prepend") != std::string::npos ||
                       (pre.find("Metaspace") != std::string::npos && pre.find("\"never\"") == std::string::npos &&
                        pre.find("\"add_prefix_space\":false") == std::string::npos);
  return v;
}

Vocab bpe_from_tokenizer_json(const json& tj, const std::string& where) {
  Vocab v;
  v.model = "gpt2";
  v.pre = detect_pre(tj);
  const json& model = tj["model"];
  read_vocab_map(v, model.at("vocab"), where);
  if (model.contains("merges")) read_merges(v, model["merges"], where);
  return v;
}

// A slow-tokenizer folder: vocab.json + merges.txt (GPT-2, Qwen2).
Vocab bpe_from_vocab_merges(const fs::path& dir) {
  Vocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  read_vocab_map(v, parse_json_file(dir / "vocab.json"), (dir / "vocab.json").string());
  const fs::path merges = dir / "merges.txt";
  check(fs::exists(merges), merges.string(), "missing (vocab.json needs merges.txt)");
  const std::string text = read_text_file(merges.string());
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    check(line.find(' ') != std::string::npos, merges.string(), "line {} is not a merge \"a b\"", line_no);
    v.merges.push_back(std::move(line));
  }
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (looks_special(v.tokens[i])) v.types[i] = static_cast<int32_t>(TokenType::Control);
  return v;
}

bool looks_like_sentencepiece(const fs::path& path) {
  std::string head = read_text_file(path.string()).substr(0, 1);
  return !head.empty() && head[0] == 0x0A;  // field 1 (pieces), length-delimited
}

int32_t find_id(const Vocab& v, const std::string& text) {
  if (text.empty()) return -1;
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.tokens[i] == text) return static_cast<int32_t>(i);
  return -1;
}

// Special ids and add_bos/add_eos: config.json ids, overridden by special_tokens_map.json, overridden by
// tokenizer_config.json (which is what transformers itself uses).
void apply_special_config(Vocab& v, const fs::path& dir, const json* tj) {
  const char* names[] = {"bos", "eos", "unk", "pad"};
  int32_t* ids[] = {&v.bos_id, &v.eos_id, &v.unk_id, &v.pad_id};
  if (fs::exists(dir / "config.json")) {
    const json c = parse_json_file(dir / "config.json");
    for (int k = 0; k < 4; ++k) {
      const std::string key = std::string(names[k]) + "_token_id";
      if (c.is_object() && c.contains(key) && c[key].is_number_integer()) *ids[k] = c[key].get<int32_t>();
    }
  }
  bool bos_set = false;
  for (const char* file : {"special_tokens_map.json", "tokenizer_config.json"}) {
    if (!fs::exists(dir / file)) continue;
    const json c = parse_json_file(dir / file);
    if (!c.is_object()) continue;
    for (int k = 0; k < 4; ++k) {
      const std::string key = std::string(names[k]) + "_token";
      if (!c.contains(key)) continue;
      if (const int32_t id = find_id(v, token_text(c[key])); id >= 0) *ids[k] = id;
    }
    if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean())
      v.add_bos = c["add_bos_token"].get<bool>(), bos_set = true;
    if (c.contains("add_eos_token") && c["add_eos_token"].is_boolean()) v.add_eos = c["add_eos_token"].get<bool>();
    // Added tokens of slow-tokenizer folders (tokenizer.json lists its own).
    if (!tj && c.contains("added_tokens_decoder") && c["added_tokens_decoder"].is_object()) {
      for (auto it = c["added_tokens_decoder"].begin(); it != c["added_tokens_decoder"].end(); ++it) {
        const std::string text = token_text(it.value());
        if (text.empty()) continue;
        int64_t id = -1;
        try {
          id = std::stoll(it.key());
        } catch (const std::exception&) {
          fail((dir / file).string(), "added token id '{}' is not a number", it.key());
        }
        set_added_token(v, id, text, it.value().value("special", false), (dir / file).string());
      }
    }
  }
  // A TemplateProcessing post-processor that starts with a special token means the tokenizer adds BOS.
  if (!bos_set && tj && tj->contains("post_processor") && v.model == "gpt2") {
    std::vector<json> procs;
    const json& pp = (*tj)["post_processor"];
    if (pp.is_object() && pp.value("type", "") == "Sequence" && pp.contains("processors")) {
      for (const auto& p : pp["processors"]) procs.push_back(p);
    } else {
      procs.push_back(pp);
    }
    for (const auto& p : procs) {
      if (!p.is_object() || p.value("type", "") != "TemplateProcessing" || !p.contains("single")) continue;
      const json& single = p["single"];
      if (single.is_array() && !single.empty() && single[0].contains("SpecialToken")) {
        v.add_bos = true;
        if (const int32_t id = find_id(v, single[0]["SpecialToken"].value("id", "")); id >= 0) v.bos_id = id;
      }
    }
  }
  if (v.model == "gpt2" && (v.bos_id < 0 || v.eos_id < 0)) {  // GPT-2 style: <|endoftext|> is both
    if (const int32_t id = find_id(v, "<|endoftext|>"); id >= 0) {
      if (v.bos_id < 0) v.bos_id = id;
      if (v.eos_id < 0) v.eos_id = id;
    }
  }
  for (int32_t* id : ids)
    if (*id >= v.size()) *id = -1;
}

}  // namespace

Vocab load_hf_vocab(const std::string& folder) {
  const fs::path dir(folder);
  const fs::path tj_path = dir / "tokenizer.json", model_path = dir / "tokenizer.model";
  Vocab v;
  json tj;
  const bool have_json = fs::exists(tj_path);
  if (have_json) {
    tj = parse_json_file(tj_path);
    check(tj.is_object() && tj.contains("model") && tj["model"].is_object(), tj_path.string(), "no \"model\" object");
    const std::string type = tj["model"].value("type", "BPE");
    check(type == "BPE", tj_path.string(), "tokenizer model type '{}' is not supported (only BPE)", type);
    check(tj["model"].contains("vocab"), tj_path.string(), "model has no vocab");
    const bool spm = is_spm_style(tj);
    try {
      if (spm && fs::exists(model_path) && looks_like_sentencepiece(model_path)) {
        v = load_sentencepiece_vocab(model_path.string());  // what llama.cpp's converter prefers
      } else {
        v = spm ? spm_from_tokenizer_json(tj, tj_path.string()) : bpe_from_tokenizer_json(tj, tj_path.string());
      }
    } catch (const json::exception& e) {
      fail(tj_path.string(), "malformed tokenizer: {}", e.what());
    }
    if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
      for (const auto& a : tj["added_tokens"]) {
        check(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                  a["content"].is_string(), tj_path.string(), "malformed added_tokens entry");
        const int64_t id = a["id"].get<int64_t>();
        const std::string text = a["content"].get<std::string>();
        if (id < v.size() && v.tokens[static_cast<size_t>(id)] == text && v.model == "llama") {  // SPM's own pieces
          int32_t& type = v.types[static_cast<size_t>(id)];
          if (a.value("special", false) && type == static_cast<int32_t>(TokenType::Normal))
            type = static_cast<int32_t>(TokenType::Control);
          continue;
        }
        set_added_token(v, id, text, a.value("special", false), tj_path.string());
      }
    }
  } else if (fs::exists(dir / "vocab.json")) {
    v = bpe_from_vocab_merges(dir);
  } else if (fs::exists(model_path)) {
    check(looks_like_sentencepiece(model_path), model_path.string(),
          "not a SentencePiece model (a tiktoken file needs its tokenizer.json)");
    v = load_sentencepiece_vocab(model_path.string());
  } else {
    return {};
  }
  if (v.model == "gpt2" && fs::exists(dir / "tokenizer_config.json")) {
    const json c = parse_json_file(dir / "tokenizer_config.json");
    if (!have_json && c.is_object() && c.value("tokenizer_class", "") == "Qwen2Tokenizer") v.pre = "qwen2";
  }
  apply_special_config(v, dir, have_json ? &tj : nullptr);
  return v;
}

}  // namespace lowbit
