#include "model/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>

#include "util/error.h"

namespace lowbit {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

size_t utf8_len(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

void append_utf8(std::string& s, char32_t c) {
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6)), s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (c >> 12)), s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// GPT-2: printable Latin-1 bytes stand for themselves, the other 68 bytes take U+0100.. in byte order.
const std::array<char32_t, 256>& byte_to_char() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

// Inverse of byte_to_char, keyed by the UTF-8 text of the character; -1 where none.
int char_to_byte(std::string_view ch) {
  static const std::unordered_map<std::string, int> table = [] {
    std::unordered_map<std::string, int> t;
    for (int b = 0; b < 256; ++b) {
      std::string s;
      append_utf8(s, byte_to_char()[static_cast<size_t>(b)]);
      t.emplace(s, b);
    }
    return t;
  }();
  const auto it = table.find(std::string(ch));
  return it == table.end() ? -1 : it->second;
}

struct Symbol {
  int prev, next;     // neighbours in the linked list (-1: none)
  size_t start, len;  // bytes of the text; len 0 once merged into its left neighbour
};

// The text's UTF-8 characters as linked symbols (a truncated sequence at the end is one short symbol).
std::vector<Symbol> char_symbols(std::string_view text) {
  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(utf8_len(static_cast<unsigned char>(text[i])), text.size() - i);
    sym.push_back({static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, i, n});
    i += n;
  }
  if (!sym.empty()) sym.back().next = -1;
  return sym;
}

// The merge loop of both BPE flavours: the best queued pair is merged unless `stale` says a side changed since it
// was queued; `add(left, right)` queues a pair if it can merge.
template <typename Bigram, typename Stale, typename Add>
void merge_symbols(std::vector<Symbol>& sym, std::priority_queue<Bigram>& queue, Stale stale, Add add) {
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    if (stale(b)) continue;
    Symbol& l = sym[static_cast<size_t>(b.left)];
    Symbol& r = sym[static_cast<size_t>(b.right)];
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = b.left;
    add(l.prev, b.left);
    add(b.left, l.next);
  }
}

}  // namespace

std::string bytes_to_bpe_chars(std::string_view bytes) {
  std::string out;
  for (char c : bytes) append_utf8(out, byte_to_char()[static_cast<unsigned char>(c)]);
  return out;
}

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  check(!vocab_.empty(), "tokenizer", "the model has no vocabulary");
  check(vocab_.model == "llama" || vocab_.model == "gpt2", "tokenizer",
        "vocabulary model '{}' is not supported (only 'llama' SentencePiece and 'gpt2' byte-level BPE)", vocab_.model);
  check(vocab_.types.empty() || vocab_.types.size() == vocab_.tokens.size(), "tokenizer",
        "{} token types for {} tokens", vocab_.types.size(), vocab_.tokens.size());
  check(vocab_.scores.empty() || vocab_.scores.size() == vocab_.tokens.size(), "tokenizer",
        "{} token scores for {} tokens", vocab_.scores.size(), vocab_.tokens.size());
  for (int32_t i = 0; i < static_cast<int32_t>(vocab_.tokens.size()); ++i) {
    ids_.emplace(vocab_.tokens[static_cast<size_t>(i)], i);
    const int32_t t = type_of(i);
    if ((t == 2 || t == 3 || t == 4) && !vocab_.tokens[static_cast<size_t>(i)].empty()) specials_.push_back(i);
  }
  std::stable_sort(specials_.begin(), specials_.end(), [&](int32_t a, int32_t b) {
    return vocab_.tokens[static_cast<size_t>(a)].size() > vocab_.tokens[static_cast<size_t>(b)].size();
  });
  for (int b = 0; b < 256; ++b) {
    const std::string name =
        is_spm() ? fmt::format("<0x{:02X}>", b) : bytes_to_bpe_chars(std::string(1, static_cast<char>(b)));
    const auto it = ids_.find(name);
    byte_ids_[b] = it == ids_.end() ? -1 : it->second;
  }
  if (!is_spm()) {
    split_ = pre_split_for(vocab_.pre);
    ignore_merges_ = split_ == PreSplit::Llama3;  // llama.cpp: LLAMA3 takes a whole word that is a token as is
    for (size_t r = 0; r < vocab_.merges.size(); ++r) merge_rank_.emplace(vocab_.merges[r], static_cast<int32_t>(r));
  }
}

int32_t Tokenizer::type_of(int32_t id) const {
  return vocab_.types.empty() ? 1 : vocab_.types[static_cast<size_t>(id)];
}

int32_t Tokenizer::id_of(std::string_view text) const {
  const auto it = ids_.find(std::string(text));
  return it == ids_.end() ? -1 : it->second;
}

// llama.cpp's SentencePiece BPE: start from UTF-8 characters and repeatedly merge the adjacent pair whose
// concatenation is a token with the highest score (leftmost first on ties); leftovers fall back to bytes.
void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<Symbol> sym = char_symbols(text);
  if (sym.empty()) return;
  struct Bigram {
    int left, right;
    float score;
    size_t size;
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<size_t>(left)];
    const int32_t id = id_of(text.substr(l.start, l.len + sym[static_cast<size_t>(right)].len));
    if (id < 0) return;
    const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(id)];
    queue.push({left, right, score, l.len + sym[static_cast<size_t>(right)].len});
  };
  merge_symbols(sym, queue, [&](const Bigram& b) {  // llama.cpp's test: a side is gone or has grown
    const size_t l = sym[static_cast<size_t>(b.left)].len, r = sym[static_cast<size_t>(b.right)].len;
    return l == 0 || r == 0 || l + r != b.size;
  }, try_add);
  for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
    const Symbol& s = sym[static_cast<size_t>(i)];
    const int32_t id = id_of(text.substr(s.start, s.len));
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    for (size_t k = 0; k < s.len; ++k) {
      const int32_t b = byte_ids_[static_cast<unsigned char>(text[s.start + k])];
      ids.push_back(b >= 0 ? b : std::max(vocab_.unk_id, 0));
    }
  }
}

// Byte-level BPE on one pre-tokenized word: map bytes to characters, then repeatedly merge the adjacent pair with
// the lowest merge rank (leftmost on ties), as HF and llama.cpp do, with a queue so long words stay O(n log n).
void Tokenizer::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  const std::string chars = bytes_to_bpe_chars(word);
  if (ignore_merges_) {
    if (const int32_t id = id_of(chars); id >= 0) return out.push_back(id);
  }
  std::vector<Symbol> sym = char_symbols(chars);
  if (sym.empty()) return;
  struct Bigram {
    int left, right;
    int32_t rank;
    size_t left_len, right_len;
    bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  std::string key;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<size_t>(left)];
    const Symbol& r = sym[static_cast<size_t>(right)];
    key.assign(chars, l.start, l.len).append(" ").append(chars, r.start, r.len);
    const auto it = merge_rank_.find(key);
    if (it != merge_rank_.end()) queue.push({left, right, it->second, l.len, r.len});
  };
  merge_symbols(sym, queue, [&](const Bigram& b) {  // a side has changed since the pair was queued
    const Symbol& l = sym[static_cast<size_t>(b.left)];
    return l.len != b.left_len || l.next != b.right || sym[static_cast<size_t>(b.right)].len != b.right_len;
  }, try_add);
  for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
    const std::string_view s = std::string_view(chars).substr(sym[static_cast<size_t>(i)].start,
                                                              sym[static_cast<size_t>(i)].len);
    if (const int32_t id = id_of(s); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (size_t k = 0; k < s.size();) {  // not a token: one token per byte-character
      const size_t n = std::min(utf8_len(static_cast<unsigned char>(s[k])), s.size() - k);
      const int32_t id = id_of(s.substr(k, n));
      if (id >= 0) out.push_back(id);
      else if (vocab_.unk_id >= 0) out.push_back(vocab_.unk_id);
      k += n;
    }
  }
}

void Tokenizer::encode_fragment(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const {
  if (is_spm()) {
    std::string s;
    if (vocab_.add_space_prefix && prefix_space) s += kSpace;
    for (char c : text) {
      if (c == ' ') s.append(kSpace);
      else s.push_back(c);
    }
    encode_spm(s, out);
    return;
  }
  for (std::string_view word : pretokenize(text, split_)) encode_bpe_word(word, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  // Partition the text on special-token strings, longest first (llama.cpp's tokenizer_st_partition).
  struct Fragment {
    std::string_view text;
    int32_t id;  // -1: raw text
  };
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({text, -1});
  for (int32_t id : specials_) {
    if (!parse_special && type_of(id) != 4) continue;  // control / unknown only when asked
    const std::string& tok = vocab_.tokens[static_cast<size_t>(id)];
    std::vector<Fragment> next;
    for (const Fragment& f : frags) {
      if (f.id >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t pos; (pos = rest.find(tok)) != std::string_view::npos;) {
        if (pos > 0) next.push_back({rest.substr(0, pos), -1});
        next.push_back({{}, id});
        rest.remove_prefix(pos + tok.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    frags = std::move(next);
  }
  std::vector<int32_t> ids;
  if (add_special && vocab_.add_bos && vocab_.bos_id >= 0) ids.push_back(vocab_.bos_id);
  bool after_special = true;  // SentencePiece's dummy prefix goes before the first text and after special tokens
  for (const Fragment& f : frags) {
    if (f.id >= 0) {
      ids.push_back(f.id);
      after_special = true;
    } else {
      encode_fragment(f.text, after_special, ids);
      after_special = false;
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos_id >= 0) ids.push_back(vocab_.eos_id);
  return ids;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  check(id >= 0 && id < vocab_.size(), "tokenizer", "token id {} is outside the vocabulary of {}", id, vocab_.size());
  const std::string& t = vocab_.tokens[static_cast<size_t>(id)];
  const int32_t type = type_of(id);
  if (type == 3 || type == 2) return special ? t : "";  // control, unknown
  if (type == 4) return t;                               // user-defined: literal text
  if (is_spm()) {
    unsigned b = 0;
    if (type == 6 && t.size() == 6 && std::sscanf(t.c_str(), "<0x%02X>", &b) == 1)
      return std::string(1, static_cast<char>(b));
    std::string out;
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, kSpace.size(), kSpace) == 0) out += ' ', i += kSpace.size();
      else out += t[i++];
    }
    return out;
  }
  std::string out;
  for (size_t i = 0; i < t.size();) {
    const size_t n = std::min(utf8_len(static_cast<unsigned char>(t[i])), t.size() - i);
    const int b = char_to_byte(std::string_view(t).substr(i, n));
    if (b >= 0) out += static_cast<char>(b);
    else out.append(t, i, n);
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id, special);
  return out;
}

std::string Tokenizer::decode_llama2c(const std::vector<int32_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = token_to_piece(ids[i]);
    const bool after_bos = i > 0 && ids[i - 1] == vocab_.bos_id && vocab_.bos_id >= 0;
    out.append(piece, after_bos && !piece.empty() && piece[0] == ' ' ? 1 : 0);
  }
  return out;
}

}  // namespace lowbit
