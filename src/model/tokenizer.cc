#include "model/tokenizer.h"

#include <fmt/format.h>

#include <queue>

#include "util/error.h"

namespace lowbit {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1; }

int32_t type_of(const Vocab& v, int32_t id) { return v.types.empty() ? 1 : v.types[static_cast<size_t>(id)]; }

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  check(!vocab_.empty(), "tokenizer", "the model has no vocabulary");
  check(vocab_.model == "llama", "tokenizer", "vocabulary model '{}' is not supported yet (only SentencePiece 'llama')",
        vocab_.model);
  for (int32_t i = 0; i < static_cast<int32_t>(vocab_.tokens.size()); ++i) ids_.emplace(vocab_.tokens[static_cast<size_t>(i)], i);
  for (int b = 0; b < 256; ++b) {
    auto it = ids_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = it == ids_.end() ? -1 : it->second;
  }
}

// llama.cpp's SentencePiece BPE: start from UTF-8 characters and repeatedly merge the adjacent pair whose
// concatenation is a token with the highest score (leftmost first on ties); leftovers fall back to bytes.
std::vector<int32_t> Tokenizer::encode_spm(std::string_view text) const {
  struct Symbol {
    int prev, next;
    size_t start, len;
  };
  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(utf8_len(static_cast<unsigned char>(text[i])), text.size() - i);
    sym.push_back({static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, i, n});
    i += n;
  }
  if (sym.empty()) return {};
  sym.back().next = -1;
  struct Bigram {
    int left, right;
    float score;
    size_t size;
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view s = text.substr(sym[static_cast<size_t>(left)].start,
                                           sym[static_cast<size_t>(left)].len + sym[static_cast<size_t>(right)].len);
    auto it = ids_.find(std::string(s));
    if (it == ids_.end()) return;
    const float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(it->second)];
    queue.push({left, right, score, s.size()});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[static_cast<size_t>(b.left)];
    Symbol& r = sym[static_cast<size_t>(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;  // stale: one side was merged already
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  std::vector<int32_t> ids;
  for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
    const Symbol& s = sym[static_cast<size_t>(i)];
    auto it = ids_.find(std::string(text.substr(s.start, s.len)));
    if (it != ids_.end()) {
      ids.push_back(it->second);
      continue;
    }
    for (size_t k = 0; k < s.len; ++k) {
      const int32_t b = byte_ids_[static_cast<unsigned char>(text[s.start + k])];
      ids.push_back(b >= 0 ? b : std::max(vocab_.unk_id, 0));
    }
  }
  return ids;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::string s;
  if (vocab_.add_space_prefix && !text.empty()) s += kSpace;
  for (char c : text) s += c == ' ' ? std::string(kSpace) : std::string(1, c);
  std::vector<int32_t> ids;
  if (add_special && vocab_.add_bos && vocab_.bos_id >= 0) ids.push_back(vocab_.bos_id);
  const auto body = encode_spm(s);
  ids.insert(ids.end(), body.begin(), body.end());
  if (add_special && vocab_.add_eos && vocab_.eos_id >= 0) ids.push_back(vocab_.eos_id);
  return ids;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  check(id >= 0 && id < vocab_.size(), "tokenizer", "token id {} is outside the vocabulary of {}", id, vocab_.size());
  const std::string& t = vocab_.tokens[static_cast<size_t>(id)];
  switch (type_of(vocab_, id)) {
    case 3: return "";  // control
    case 6: {           // <0xXX>
      unsigned b = 0;
      std::sscanf(t.c_str(), "<0x%02X>", &b);
      return std::string(1, static_cast<char>(b));
    }
    default: {
      std::string out;
      for (size_t i = 0; i < t.size();) {
        if (t.compare(i, kSpace.size(), kSpace) == 0) out += ' ', i += kSpace.size();
        else out += t[i++];
      }
      return out;
    }
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id);
  return out;
}

}  // namespace lowbit
