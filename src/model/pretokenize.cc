#include "model/pretokenize.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <iterator>
#include <initializer_list>
#include <utility>

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

bool is_punct(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0; }
bool is_cjk(char32_t c) { return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF); }
bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }

bool in_ranges(char32_t c, const std::pair<char32_t, char32_t>* r, size_t n) {
  const auto* it = std::upper_bound(r, r + n, c, [](char32_t v, const auto& range) { return v < range.first; });
  return it != r && c <= (it - 1)->second;
}

// deepseek-llm's explicit letter class (cased letters of the alphabetic scripts, as listed in its regex).
bool is_deepseek_letter(char32_t c) {
  static constexpr std::pair<char32_t, char32_t> kRanges[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
    {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386},
    {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
    {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B},
    {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4},
    {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D},
    {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184},
    {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B},
    {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
  };
  return in_ranges(c, kRanges, std::size(kRanges));
}

// deepseek-llm's punctuation class [!-/:-~！-／：-～‘-‟　-。].
bool is_deepseek_punct(char32_t c) {
  static constexpr std::pair<char32_t, char32_t> kRanges[] = {
      {0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}};
  return in_ranges(c, kRanges, std::size(kRanges));
}

// Applies llama.cpp's chain of regexes: each one splits every piece of the previous into its matches and the
// gaps between them (gaps are kept as pieces). The rules are hand-written matchers; end_ is the current piece's end,
// so lookaheads and "end of text" see only that piece, as the regex would.
class Splitter {
 public:
  using Rule = size_t (Splitter::*)(size_t) const;

  explicit Splitter(std::string_view text) : text_(text), cp_(decode_utf8(text)) {}

  std::vector<std::string_view> run(std::initializer_list<Rule> rules) {
    std::vector<std::pair<size_t, size_t>> pieces = {{0, cp_.size()}};
    for (Rule rule : rules) {
      std::vector<std::pair<size_t, size_t>> next;
      for (const auto& [b, e] : pieces) {
        end_ = e;
        size_t gap = b;
        for (size_t i = b; i < e;) {
          const size_t len = (this->*rule)(i);
          if (len == 0) {
            ++i;
            continue;
          }
          if (gap < i) next.emplace_back(gap, i);
          next.emplace_back(i, i + len);
          i += len;
          gap = i;
        }
        if (gap < e) next.emplace_back(gap, e);
      }
      pieces = std::move(next);
    }
    std::vector<std::string_view> out;
    out.reserve(pieces.size());
    for (const auto& [b, e] : pieces) {
      const size_t from = cp_[b].start, to = cp_[e - 1].start + cp_[e - 1].len;
      out.push_back(text_.substr(from, to - from));
    }
    return out;
  }

  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  size_t gpt2(size_t i) const {
    if (size_t k = contraction(i, false)) return k;
    const size_t o = at(i) == ' ' && in(i + 1) ? 1 : 0;
    const char32_t d = at(i + o);
    if (o == 0 || !is_space(d)) {
      if (is_letter(d)) return o + run_of(i + o, is_letter);
      if (is_number(d)) return o + run_of(i + o, is_number);
      if (is_other(d)) return o + run_of(i + o, is_other);
    }
    return trailing_space(i);
  }
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  size_t llama3(size_t i) const { return llama3_like(i, 3); }
  size_t qwen2(size_t i) const { return llama3_like(i, 1); }  // the same with \p{N} one at a time
  size_t one_number(size_t i) const { return is_number(at(i)) ? 1 : 0; }                       // \p{N}
  size_t numbers(size_t i) const { return run_of(i, is_number); }                              // \p{N}+
  size_t three_digits(size_t i) const { return run_of(i, is_ascii_digit, 3) == 3 ? 3 : 0; }    // [0-9][0-9][0-9]
  size_t one_newline(size_t i) const { return is_newline(at(i)) ? 1 : 0; }                     // [\r\n]
  size_t cjk(size_t i) const { return run_of(i, is_cjk); }  // [一-龥ࠀ-一가-퟿]+
  size_t space_letters(size_t i) const { return optional_space_then(i, is_letter); }          // \s?\p{L}+
  size_t space_punct(size_t i) const { return optional_space_then(i, is_punct); }             // \s?\p{P}+
  size_t deepseek_letters(size_t i) const { return optional_space_then(i, is_deepseek_letter); }
  size_t deepseek_punct(size_t i) const { return optional_space_then(i, is_deepseek_punct); }
  size_t final_spaces(size_t i) const {  // \s+$
    const size_t ws = run_of(i, is_space);
    return i + ws == end_ ? ws : 0;
  }
  // [\p{P}\$\+<=>\^~\|]+ (default) and the same with ` (falcon)
  size_t punct_default(size_t i) const { return run_of(i, [](char32_t c) { return is_punct(c) || is_sym(c, false); }); }
  size_t punct_falcon(size_t i) const { return run_of(i, [](char32_t c) { return is_punct(c) || is_sym(c, true); }); }

 private:
  static bool is_sym(char32_t c, bool backtick) {
    return c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|' ||
           (backtick && c == '`');
  }
  char32_t at(size_t i) const { return i < end_ ? cp_[i].c : 0; }
  bool in(size_t i) const { return i < end_; }
  template <typename Pred>
  size_t run_of(size_t i, Pred p, size_t max = SIZE_MAX) const {
    size_t j = i;
    while (j < end_ && j - i < max && p(cp_[j].c)) ++j;
    return j - i;
  }
  template <typename Pred>
  size_t optional_space_then(size_t i, Pred p) const {
    const size_t o = is_space(at(i)) && in(i + 1) && p(at(i + 1)) ? 1 : 0;
    return p(at(i + o)) && in(i + o) ? o + run_of(i + o, p) : 0;
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
  size_t trailing_space(size_t i) const {
    const size_t ws = run_of(i, is_space);
    return ws > 1 && i + ws < end_ ? ws - 1 : ws;
  }
  size_t llama3_like(size_t i, size_t max_digits) const {
    const char32_t c = at(i);
    if (size_t k = contraction(i, true)) return k;
    if (is_letter(c)) return run_of(i, is_letter);
    if (!is_newline(c) && !is_number(c) && in(i + 1) && is_letter(at(i + 1))) return 1 + run_of(i + 1, is_letter);
    if (is_number(c)) return run_of(i, is_number, max_digits);
    const size_t o = c == ' ' && in(i + 1) ? 1 : 0;
    if (in(i + o) && is_other(at(i + o))) {
      const size_t k = o + run_of(i + o, is_other);
      return k + run_of(i + k, is_newline);
    }
    const size_t ws = run_of(i, is_space);
    size_t last_nl = 0;
    for (size_t k = 0; k < ws; ++k)
      if (is_newline(at(i + k))) last_nl = k + 1;
    return last_nl ? last_nl : trailing_space(i);
  }

  std::string_view text_;
  std::vector<Cp> cp_;
  size_t end_ = 0;
};

}  // namespace

PreSplit pre_split_for(const std::string& pre) {
  static const std::pair<const char*, PreSplit> names[] = {
      {"gpt-2", PreSplit::Gpt2},
      {"gpt2", PreSplit::Gpt2},
      {"mpt", PreSplit::Gpt2},
      {"olmo", PreSplit::Gpt2},
      {"jais", PreSplit::Gpt2},
      {"trillion", PreSplit::Gpt2},
      {"default", PreSplit::Default},
      {"", PreSplit::Default},
      {"starcoder", PreSplit::DigitsGpt2},
      {"refact", PreSplit::DigitsGpt2},
      {"command-r", PreSplit::DigitsGpt2},
      {"smollm", PreSplit::DigitsGpt2},
      {"codeshell", PreSplit::DigitsGpt2},
      {"exaone", PreSplit::DigitsGpt2},
      {"minerva", PreSplit::DigitsGpt2},
      {"llama-bpe", PreSplit::Llama3},
      {"llama3", PreSplit::Llama3},
      {"falcon3", PreSplit::Llama3},
      {"pixtral", PreSplit::Llama3},
      {"dbrx", PreSplit::Llama3},
      {"smaug-bpe", PreSplit::Llama3},
      {"qwen2", PreSplit::Qwen2},
      {"deepseek-r1-qwen", PreSplit::Qwen2},
      {"stablelm2", PreSplit::Qwen2},
      {"megrez", PreSplit::Qwen2},
      {"falcon", PreSplit::Falcon},
      {"deepseek-coder", PreSplit::DeepseekCoder},
      {"deepseek-llm", PreSplit::DeepseekLlm},
  };
  for (const auto& [name, kind] : names)
    if (pre == name) return kind;
  fail("tokenizer", "pre-tokenizer '{}' is not implemented", pre);
}

std::vector<std::string_view> pretokenize(std::string_view text, PreSplit kind) {
  if (text.empty()) return {};
  Splitter s(text);
  using S = Splitter;
  switch (kind) {
    case PreSplit::Gpt2: return s.run({&S::gpt2});
    case PreSplit::Default: return s.run({&S::punct_default, &S::gpt2, &S::numbers, &S::three_digits});
    case PreSplit::DigitsGpt2: return s.run({&S::one_number, &S::gpt2});
    case PreSplit::Llama3: return s.run({&S::llama3});
    case PreSplit::Qwen2: return s.run({&S::qwen2});
    case PreSplit::Falcon: return s.run({&S::punct_falcon, &S::gpt2, &S::three_digits});
    case PreSplit::DeepseekLlm:
      return s.run({&S::one_newline, &S::deepseek_letters, &S::deepseek_punct, &S::final_spaces, &S::cjk, &S::numbers});
    case PreSplit::DeepseekCoder:
      return s.run({&S::one_newline, &S::space_letters, &S::space_punct, &S::cjk, &S::one_number});
  }
  return {};
}

}  // namespace lowbit
