#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace lowbit {

double Sampler::uniform() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);  // SplitMix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits) {
  const int32_t n = static_cast<int32_t>(logits.size());
  if (o_.temperature <= 0.0f)  // greedy; the lowest id wins ties
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const int32_t k = o_.top_k > 0 ? std::min(o_.top_k, n) : n;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), by_logit);
  ids.resize(static_cast<size_t>(k));
  std::vector<double> p(ids.size());
  const double mx = logits[ids[0]];
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) sum += p[i] = std::exp((logits[ids[i]] - mx) / o_.temperature);
  size_t keep = ids.size();
  double cum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    cum += p[i] / sum;
    if (cum >= o_.top_p) {
      keep = i + 1;
      break;
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  double r = uniform() * total;
  for (size_t i = 0; i < keep; ++i)
    if ((r -= p[i]) < 0) return ids[i];
  return ids[keep - 1];
}

}  // namespace lowbit
