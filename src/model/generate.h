// The generation loop every caller shares: evaluate the prompt in one batch, then sample and feed back one token
// at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/language_model.h"
#include "model/sampler.h"

namespace lowbit {

// Called with each generated token; return false to stop early.
using TokenCallback = std::function<bool(int32_t token)>;

// Runs `prompt` (non-empty) from position 0, then generates up to n_predict tokens, stopping after `stop_token`
// (if >= 0; it is returned and passed to the callback). Returns the generated tokens. Throws Error if the prompt is
// empty or prompt + n_predict exceed the model's context.
std::vector<int32_t> generate(LanguageModel& model, std::span<const int32_t> prompt, int64_t n_predict,
                              Sampler& sampler, const TokenCallback& on_token = {}, int32_t stop_token = -1);

}  // namespace lowbit
