// TEMPORARY (hfio branch): weak stand-ins until the vocab loaders land; the integrator deletes this file.
#include "model/vocab_loaders.h"

namespace lowbit {

__attribute__((weak)) Vocab load_hf_vocab(const std::string&) { return {}; }
__attribute__((weak)) Vocab load_sentencepiece_vocab(const std::string&) { return {}; }
__attribute__((weak)) Vocab load_llama2c_vocab(const std::string&, int64_t) { return {}; }

}  // namespace lowbit
