// The quantizer tests' measure of what a quantized model lost: its KL-divergence from the original's logits over the
// bundled text data/wiki.test.head.raw (8 chunks of 128 tokens, 2 threads). The original's logits are saved once
// (save_wiki_head_logits), then each quantized model is compared against them (wiki_head_kld, the mean).
#pragma once

#include <string>

namespace lowbit {

void save_wiki_head_logits(const std::string& model_path, const std::string& logits_path);
double wiki_head_kld(const std::string& model_path, const std::string& base_logits_path);

}  // namespace lowbit
