#include "model/generate.h"

#include "util/error.h"

namespace lowbit {

std::vector<int32_t> generate(LanguageModel& model, std::span<const int32_t> prompt, int64_t n_predict,
                              Sampler& sampler, const TokenCallback& on_token, int32_t stop_token) {
  check(!prompt.empty(), "generate", "the prompt has no tokens");
  check(n_predict >= 0, "generate", "n_predict is negative ({})", n_predict);
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  check(n_prompt + n_predict <= model.n_ctx() + 1, "generate", "{} prompt tokens + {} to generate exceed the context of {}",
        n_prompt, n_predict, model.n_ctx());
  std::vector<int32_t> out;
  if (n_predict == 0) return out;
  std::vector<float> logits(static_cast<size_t>(model.n_vocab()));
  model.eval(prompt, 0, logits.data(), false);
  int64_t pos = n_prompt;
  while (true) {
    const int32_t next = sampler.sample(logits);
    out.push_back(next);
    const bool go_on = on_token ? on_token(next) : true;
    if (!go_on || next == stop_token || static_cast<int64_t>(out.size()) == n_predict) break;
    // The last generated token is never evaluated, so it needs no cache slot.
    model.eval(std::span<const int32_t>(&next, 1), pos++, logits.data(), false);
  }
  return out;
}

}  // namespace lowbit
