// llama2.c legacy checkpoints (karpathy/llama2.c run.c): 7 int32 header (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means a separate classifier), then F32 weights. Tensors
// are zero-copy views under canonical GGUF names and shapes. llama2.c's wq/wk already use GGUF's adjacent-pair
// rotary layout, so nothing is permuted.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "io/model_source.h"

namespace lowbit {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;  // vocab_size was positive
  bool has_freq_cis;       // the two RoPE tables llama2.c's export writes after rms_final
};

// Checks the header against the whole file's size. Throws Error naming `where`.
Llama2cHeader parse_llama2c_header(std::span<const uint8_t> file, const std::string& where);

// `tokenizer_path`: a llama2.c tokenizer .bin or a SentencePiece .model. Empty: tokenizer.bin beside the model,
// else tok<vocab_size>.bin beside it, else no vocabulary.
std::unique_ptr<ModelSource> open_llama2c_model(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace lowbit
