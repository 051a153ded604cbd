// Reading a tokenizer vocabulary from each file format into the one Vocab shape (GGUF's tokenizer.ggml.*).
// GGUF vocabularies are read by the GGUF reader (io/gguf_source.h).
#pragma once

#include <string>

#include "model/vocab.h"

namespace lowbit {

// SentencePiece model protobuf (tokenizer.model): pieces, scores, types; model "llama".
Vocab load_sentencepiece_vocab(const std::string& path);
// llama2.c tokenizer .bin (max_token_len, then {score, len, bytes} per token); model "llama", BOS 1, EOS 2.
Vocab load_llama2c_vocab(const std::string& path, int64_t vocab_size);
// A Hugging Face folder: tokenizer.json (BPE or SentencePiece-style), else tokenizer.model, plus
// tokenizer_config.json / special_tokens_map.json / config.json for special ids and add_bos/add_eos.
// Returns an empty Vocab if the folder has no tokenizer files.
Vocab load_hf_vocab(const std::string& folder);

}  // namespace lowbit
