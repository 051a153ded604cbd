#include "eval/perplexity.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace lowbit {
namespace {

constexpr char kMagic[8] = {'L', 'B', 'L', 'O', 'G', 'I', 'T', 'S'};
constexpr uint32_t kVersion = 1;
constexpr float kLpRange = 24.0f;
constexpr size_t kHeaderBytes = 8 + 4 * 4 + 8;

uint64_t fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t id : ids)
    for (int b = 0; b < 4; ++b) h = (h ^ ((static_cast<uint32_t>(id) >> (8 * b)) & 0xff)) * 1099511628211ull;
  return h;
}

// llama.cpp's log-softmax: float exponentials summed in double.
void log_probs(const float* logits, int64_t n, std::vector<float>& out) {
  const float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(logits[j] - mx);
  const float lse = static_cast<float>(std::log(sum));
  out.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) out[static_cast<size_t>(j)] = logits[j] - mx - lse;
}

double percentile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  const double p = fraction * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(p);
  const double f = p - static_cast<double>(i);
  return (1 - f) * sorted[i] + f * sorted[std::min(i + 1, sorted.size() - 1)];
}

void mean_err(const std::vector<double>& v, double& mean, double& err) {
  const double n = static_cast<double>(v.size());
  double s = 0, s2 = 0;
  for (double x : v) s += x, s2 += x * x;
  mean = s / n;
  const double var = s2 / n - mean * mean;
  err = v.size() > 1 && var > 0 ? std::sqrt(var / (n - 1)) : 0;
}

class LogitsWriter {
 public:
  LogitsWriter(const std::string& path, uint32_t n_vocab, uint32_t n_ctx, uint32_t n_chunks, uint64_t hash)
      : out_(path), n_vocab_(n_vocab) {
    out_.write(kMagic, 8);
    for (uint32_t v : {kVersion, n_vocab, n_ctx, n_chunks}) out_.write(&v, 4);
    out_.write(&hash, 8);
  }
  void add(const std::vector<float>& lp) {
    const float mx = *std::max_element(lp.begin(), lp.end());
    const float step = kLpRange / 65535.0f;
    buf_.resize(n_vocab_);
    for (size_t j = 0; j < n_vocab_; ++j)
      buf_[j] = static_cast<uint16_t>(std::lround(std::min((mx - lp[j]) / step, 65535.0f)));
    out_.write(&mx, 4);
    out_.write(&step, 4);
    out_.write(buf_.data(), buf_.size() * 2);
  }
  void commit() { out_.commit(); }

 private:
  AtomicFile out_;
  size_t n_vocab_;
  std::vector<uint16_t> buf_;
};

class LogitsReader {
 public:
  LogitsReader(const std::string& path, uint32_t n_vocab, uint32_t n_ctx, uint32_t n_chunks, uint64_t hash)
      : file_(MappedFile::open(path)), path_(path), n_vocab_(n_vocab) {
    const auto b = file_->bytes();
    check(b.size() >= kHeaderBytes && std::memcmp(b.data(), kMagic, 8) == 0, path, "not a lowbit logits file");
    uint32_t h[4];
    std::memcpy(h, b.data() + 8, 16);
    uint64_t file_hash;
    std::memcpy(&file_hash, b.data() + 24, 8);
    check(h[0] == kVersion, path, "logits file version {} (expected {})", h[0], kVersion);
    check(h[1] == n_vocab, path, "made with a vocabulary of {} tokens, this model has {}", h[1], n_vocab);
    check(h[2] == n_ctx && h[3] == n_chunks, path, "made with ctx {} x {} chunks, this run uses ctx {} x {} chunks",
          h[2], h[3], n_ctx, n_chunks);
    check(file_hash == hash, path, "made from different tokens (another text or tokenizer)");
    pos_ = kHeaderBytes;
  }
  void next(std::vector<float>& lp) {
    const size_t need = 8 + 2 * static_cast<size_t>(n_vocab_);
    check(file_->size() - pos_ >= need, path_, "truncated: fewer positions than this run scores");
    float mx, step;
    std::memcpy(&mx, file_->data() + pos_, 4);
    std::memcpy(&step, file_->data() + pos_ + 4, 4);
    check(std::isfinite(mx) && std::isfinite(step) && step > 0, path_, "corrupt record at byte {}", pos_);
    const uint8_t* q = file_->data() + pos_ + 8;
    lp.resize(n_vocab_);
    for (size_t j = 0; j < n_vocab_; ++j) {
      uint16_t v;
      std::memcpy(&v, q + 2 * j, 2);
      lp[j] = mx - static_cast<float>(v) * step;
    }
    pos_ += need;
  }
  void finish() { check(pos_ == file_->size(), path_, "{} extra bytes: more positions than this run scores", file_->size() - pos_); }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::string path_;
  size_t n_vocab_;
  size_t pos_ = 0;
};

}  // namespace

std::string KldSummary::format() const {
  std::string s;
  s += fmt::format("====== Perplexity statistics ======\n");
  s += fmt::format("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", ppl_q, ppl_q_err);
  s += fmt::format("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", ppl_base, ppl_base_err);
  s += fmt::format("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100 * cor_ln_ppl);
  s += fmt::format("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", ln_ratio, ln_ratio_err);
  s += fmt::format("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", std::exp(ln_ratio), std::exp(ln_ratio) * ln_ratio_err);
  s += fmt::format("\n====== KL divergence statistics ======\n");
  s += fmt::format("Mean    KLD: {:10.6f} ± {:10.6f}\n", kld_mean, kld_err);
  s += fmt::format("Maximum KLD: {:10.6f}\n99.9%   KLD: {:10.6f}\n99.0%   KLD: {:10.6f}\n90.0%   KLD: {:10.6f}\n", kld_max,
                   kld_p99_9, kld_p99, kld_p90);
  s += fmt::format("Median  KLD: {:10.6f}\n10.0%   KLD: {:10.6f}\n 5.0%   KLD: {:10.6f}\n 1.0%   KLD: {:10.6f}\n", kld_median,
                   kld_p10, kld_p5, kld_p1);
  s += fmt::format("Minimum KLD: {:10.6f}\n", kld_min);
  s += fmt::format("\n====== Token probability statistics ======\n");
  s += fmt::format("Mean    Δp: {:6.3f} ± {:5.3f} %\nMaximum Δp: {:6.3f}%\nMinimum Δp: {:6.3f}%\n", 100 * dp_mean, 100 * dp_err,
                   100 * dp_max, 100 * dp_min);
  s += fmt::format("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100 * dp_rms, 100 * dp_rms_err);
  s += fmt::format("Same top p: {:6.3f} ± {:5.3f} %\n", same_top_pct, same_top_err);
  return s;
}

PerplexityResult compute_perplexity(LanguageModel& model, const std::vector<int32_t>& tokens,
                                    const PerplexityOptions& o,
                                    const std::function<void(int64_t, double)>& progress) {
  const int64_t n_ctx = o.n_ctx, n_vocab = model.n_vocab();
  check(n_ctx >= 8, "--ctx", "context of {} tokens is too small", n_ctx);
  check(n_ctx <= model.n_ctx(), "--ctx", "{} exceeds the model context of {} tokens", n_ctx, model.n_ctx());
  check(static_cast<int64_t>(tokens.size()) >= 2 * n_ctx, "text",
        "tokenizes to {} tokens; at least {} are needed for a context of {}", tokens.size(), 2 * n_ctx, n_ctx);
  const int64_t max_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  const int64_t n_chunks = o.n_chunks < 0 ? max_chunks : std::min(o.n_chunks, max_chunks);
  check(n_chunks > 0, "--chunks", "no chunks to evaluate");
  const int64_t n_batch = std::max<int64_t>(1, std::min(o.n_batch, n_ctx));
  const int64_t first = n_ctx / 2;

  // What is evaluated (chunks with BOS in front): hashed so a logits file from other tokens is refused.
  std::vector<int32_t> evaluated;
  for (int64_t c = 0; c < n_chunks; ++c) {
    evaluated.insert(evaluated.end(), tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (o.bos >= 0) evaluated[static_cast<size_t>(c * n_ctx)] = o.bos;
  }
  const uint64_t hash = fnv1a(evaluated);
  std::optional<LogitsWriter> writer;
  std::optional<LogitsReader> reader;
  if (!o.save_logits.empty()) writer.emplace(o.save_logits, n_vocab, n_ctx, n_chunks, hash);
  if (!o.kld_base.empty()) reader.emplace(o.kld_base, n_vocab, n_ctx, n_chunks, hash);

  PerplexityResult r;
  r.n_chunks = n_chunks;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<double> klds, dps, nll_q, nll_base;
  int64_t same_top = 0;
  std::vector<float> logits(static_cast<size_t>(n_ctx * n_vocab)), lp, lp_base;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int32_t* chunk = evaluated.data() + c * n_ctx;
    for (int64_t b = 0; b < n_ctx; b += n_batch) {
      const int64_t nb = std::min(n_batch, n_ctx - b);
      model.eval(std::span<const int32_t>(chunk + b, static_cast<size_t>(nb)), b,
                 logits.data() + b * n_vocab, true);
    }
    for (int64_t i = first; i < n_ctx - 1; ++i) {
      const int32_t next = chunk[i + 1];
      log_probs(logits.data() + i * n_vocab, n_vocab, lp);
      const double v = -static_cast<double>(lp[static_cast<size_t>(next)]);
      nll += v, nll2 += v * v, ++count;
      if (writer) writer->add(lp);
      if (reader) {
        reader->next(lp_base);
        double kld = 0;
        for (int64_t j = 0; j < n_vocab; ++j) {
          const double pb = std::exp(static_cast<double>(lp_base[static_cast<size_t>(j)]));
          kld += pb * (static_cast<double>(lp_base[static_cast<size_t>(j)]) - lp[static_cast<size_t>(j)]);
        }
        klds.push_back(kld);
        dps.push_back(std::exp(static_cast<double>(lp[static_cast<size_t>(next)])) -
                      std::exp(static_cast<double>(lp_base[static_cast<size_t>(next)])));
        nll_q.push_back(v);
        nll_base.push_back(-static_cast<double>(lp_base[static_cast<size_t>(next)]));
        same_top += std::max_element(lp.begin(), lp.end()) - lp.begin() ==
                    std::max_element(lp_base.begin(), lp_base.end()) - lp_base.begin();
      }
    }
    r.running_ppl.push_back(std::exp(nll / static_cast<double>(count)));
    if (progress) progress(c + 1, r.running_ppl.back());
  }
  if (writer) writer->commit();
  if (reader) reader->finish();

  const double mean = nll / static_cast<double>(count);
  r.ppl = std::exp(mean);
  const double var = nll2 / static_cast<double>(count) - mean * mean;
  r.ppl_err = var > 0 && count > 1 ? std::sqrt(var / static_cast<double>(count - 1)) * r.ppl : 0;
  r.n_scored = count;

  if (reader) {
    KldSummary k;
    k.count = count;
    double mq, eq, mb, eb;
    mean_err(nll_q, mq, eq);
    mean_err(nll_base, mb, eb);
    k.ppl_q = std::exp(mq), k.ppl_q_err = std::exp(mq) * eq;
    k.ppl_base = std::exp(mb), k.ppl_base_err = std::exp(mb) * eb;
    std::vector<double> diff(nll_q.size());
    double cov = 0;
    for (size_t i = 0; i < diff.size(); ++i) diff[i] = nll_q[i] - nll_base[i], cov += (nll_q[i] - mq) * (nll_base[i] - mb);
    cov /= static_cast<double>(diff.size());
    const double sq = eq * std::sqrt(static_cast<double>(diff.size() - 1)), sb = eb * std::sqrt(static_cast<double>(diff.size() - 1));
    k.cor_ln_ppl = sq > 0 && sb > 0 ? cov / (sq * sb) : 1.0;
    mean_err(diff, k.ln_ratio, k.ln_ratio_err);
    mean_err(klds, k.kld_mean, k.kld_err);
    std::vector<double> sorted = klds;
    std::sort(sorted.begin(), sorted.end());
    k.kld_max = sorted.back(), k.kld_min = sorted.front();
    k.kld_p99_9 = percentile(sorted, 0.999), k.kld_p99 = percentile(sorted, 0.99), k.kld_p90 = percentile(sorted, 0.90);
    k.kld_median = percentile(sorted, 0.5), k.kld_p10 = percentile(sorted, 0.1), k.kld_p5 = percentile(sorted, 0.05),
    k.kld_p1 = percentile(sorted, 0.01);
    mean_err(dps, k.dp_mean, k.dp_err);
    std::vector<double> dp2(dps.size());
    for (size_t i = 0; i < dps.size(); ++i) dp2[i] = dps[i] * dps[i];
    double m2, e2;
    mean_err(dp2, m2, e2);
    k.dp_rms = std::sqrt(m2);
    k.dp_rms_err = k.dp_rms > 0 ? 0.5 * e2 / k.dp_rms : 0;
    k.dp_max = *std::max_element(dps.begin(), dps.end()), k.dp_min = *std::min_element(dps.begin(), dps.end());
    const double p = static_cast<double>(same_top) / static_cast<double>(count);
    k.same_top_pct = 100 * p;
    k.same_top_err = count > 1 ? 100 * std::sqrt(p * (1 - p) / static_cast<double>(count - 1)) : 0;
    r.kld = k;
  }
  return r;
}

}  // namespace lowbit
