#include "model/pretokenize.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "util/error.h"

namespace lowbit {
namespace {

// One code point of the input: where it starts and how many bytes it takes. Invalid UTF-8 bytes become
// one-byte "code points" with value 0xFFFD (neither letter, digit nor space).
struct Cp {
  char32_t c;
  size_t start, len;
};

std::vector<Cp> decode_utf8(std::string_view s) {
  std::vector<Cp> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    char32_t c = n == 1 ? b0 : n == 2 ? (b0 & 0x1f) : n == 3 ? (b0 & 0x0f) : (b0 & 0x07);
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xc0) == 0x80;
      c = (c << 6) | (b & 0x3f);
    }
    if (!ok) n = 1, c = 0xFFFD;
    out.push_back({c, i, n});
    i += n;
  }
  return out;
}

bool is_letter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }
bool is_number(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }
bool is_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; }
bool is_newline(char32_t c) { return c == '\r' || c == '\n'; }
bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }
char32_t lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

class Splitter {
 public:
  Splitter(std::string_view text, PreSplit kind) : text_(text), cp_(decode_utf8(text)), kind_(kind) {}

  std::vector<std::string_view> run() {
    const size_t n = cp_.size();
    for (size_t i = 0; i < n;) {
      const size_t len = kind_ == PreSplit::Gpt2 || kind_ == PreSplit::DigitsGpt2 ? match_gpt2(i) : match_llama3(i);
      emit(i, len);
      i += len;
    }
    return out_;
  }

 private:
  char32_t at(size_t i) const { return i < cp_.size() ? cp_[i].c : 0; }
  bool in(size_t i) const { return i < cp_.size(); }
  template <typename Pred>
  size_t run_of(size_t i, Pred p, size_t max = SIZE_MAX) const {
    size_t j = i;
    while (j < cp_.size() && j - i < max && p(cp_[j].c)) ++j;
    return j - i;
  }
  void emit(size_t i, size_t len) {
    const size_t b = cp_[i].start, e = cp_[i + len - 1].start + cp_[i + len - 1].len;
    out_.push_back(text_.substr(b, e - b));
  }
  // 's|'t|'re|'ve|'m|'ll|'d (optionally case-insensitive); 0 if none.
  size_t contraction(size_t i, bool fold) const {
    if (at(i) != '\'' || !in(i + 1)) return 0;
    auto f = [&](char32_t c) { return fold ? lower(c) : c; };
    const char32_t a = f(at(i + 1)), b = in(i + 2) ? f(at(i + 2)) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }
  // \s+(?!\S)|\s+ : a whitespace run, leaving its last character to the next word when one follows.
  // With DigitsGpt2 a digit ends the piece the regex sees, so it counts as the end of the text.
  size_t trailing_space(size_t i) const {
    const size_t ws = run_of(i, is_space);
    if (ws == 0) return 0;
    const bool word_follows = i + ws < cp_.size() && !(kind_ == PreSplit::DigitsGpt2 && is_number(at(i + ws)));
    return word_follows && ws > 1 ? ws - 1 : ws;
  }

  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  // DigitsGpt2 first isolates every \p{N} (HF Digits(individual_digits) / llama.cpp's "\p{N}" split).
  size_t match_gpt2(size_t i) const {
    const char32_t c = at(i);
    if (kind_ == PreSplit::DigitsGpt2 && is_number(c)) return 1;
    if (size_t k = contraction(i, false)) return k;
    const size_t o = c == ' ' && in(i + 1) ? 1 : 0;
    const char32_t d = at(i + o);
    if (o == 0 || !is_space(d)) {
      if (is_letter(d)) return o + run_of(i + o, is_letter);
      if (is_number(d)) {
        if (kind_ == PreSplit::DigitsGpt2) return o ? trailing_space(i) : 1;  // digits stand alone
        return o + run_of(i + o, is_number);
      }
      if (is_other(d)) return o + run_of(i + o, is_other);
    }
    return trailing_space(i);
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  // Qwen2 is the same with \p{N} one at a time.
  size_t match_llama3(size_t i) const {
    const char32_t c = at(i);
    if (size_t k = contraction(i, true)) return k;
    if (is_letter(c)) return run_of(i, is_letter);
    if (!is_newline(c) && !is_number(c) && is_letter(at(i + 1)) && in(i + 1)) return 1 + run_of(i + 1, is_letter);
    if (is_number(c)) return run_of(i, is_number, kind_ == PreSplit::Qwen2 ? 1 : 3);
    const size_t o = c == ' ' && in(i + 1) ? 1 : 0;
    if (is_other(at(i + o)) && in(i + o)) {
      const size_t k = o + run_of(i + o, is_other);
      return k + run_of(i + k, is_newline);
    }
    const size_t ws = run_of(i, is_space);
    size_t last_nl = 0;
    for (size_t k = 0; k < ws; ++k)
      if (is_newline(at(i + k))) last_nl = k + 1;
    if (last_nl) return last_nl;
    return trailing_space(i);
  }

  std::string_view text_;
  std::vector<Cp> cp_;
  PreSplit kind_;
  std::vector<std::string_view> out_;
};

}  // namespace

PreSplit pre_split_for(const std::string& pre) {
  static const char* const gpt2[] = {"default", "gpt-2", "gpt2", "mpt", "olmo", "jais", "trillion", "gpt-neox"};
  static const char* const digits[] = {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva"};
  static const char* const llama3[] = {"llama-bpe", "llama3", "falcon3", "pixtral", "dbrx", "smaug-bpe"};
  static const char* const qwen2[] = {"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"};
  auto any = [&](const auto& names) { return std::find(std::begin(names), std::end(names), pre) != std::end(names); };
  if (pre.empty() || any(gpt2)) return PreSplit::Gpt2;
  if (any(digits)) return PreSplit::DigitsGpt2;
  if (any(llama3)) return PreSplit::Llama3;
  if (any(qwen2)) return PreSplit::Qwen2;
  fail("tokenizer", "pre-tokenizer '{}' is not implemented", pre);
}

std::vector<std::string_view> pretokenize(std::string_view text, PreSplit kind) {
  if (text.empty()) return {};
  return Splitter(text, kind).run();
}

}  // namespace lowbit
