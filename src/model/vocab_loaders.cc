#include "model/vocab_loaders.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>

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

Vocab load_hf_vocab(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  if (!fs::exists(dir / "tokenizer.model")) return {};  // byte-level BPE tokenizer.json: not supported yet
  Vocab v = load_sentencepiece_vocab((dir / "tokenizer.model").string());
  const fs::path cfg = dir / "tokenizer_config.json";
  if (fs::exists(cfg)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(cfg.string()));
    } catch (const nlohmann::json::exception& e) {
      fail(cfg.string(), "not valid JSON: {}", e.what());
    }
    if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) v.add_bos = j["add_bos_token"].get<bool>();
    if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) v.add_eos = j["add_eos_token"].get<bool>();
  }
  return v;
}

}  // namespace lowbit
