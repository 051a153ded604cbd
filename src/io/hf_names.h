// Hugging Face tensor names <-> the canonical GGUF names lowbit uses everywhere, and the q/k row permutation that
// turns HF Llama's rotate-half rotary layout into GGUF's adjacent-pair layout (as llama.cpp's
// convert_hf_to_gguf.py LlamaModel.permute does). Qwen2/Qwen3 use NeoX rotary in both worlds: never permuted.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace lowbit {

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight". Returns nullopt for tensors HF stores but
// GGUF does not need (the skip list: rotary_emb.inv_freq buffers). Throws Error naming `where` and the tensor
// for any other name it does not know.
std::optional<std::string> hf_to_gguf_name(const std::string& hf_name, const std::string& where);
// The inverse, for export. Throws Error for a canonical name with no HF counterpart.
std::string gguf_to_hf_name(const std::string& gguf_name);

// Sorts HF tensor names into the order transformers' state_dict lists them (embedding, then per layer
// self_attn q/k/v/o (+ q/k norms), mlp gate/up/down, the two layer norms, then the final norm and lm_head), which
// is the order HF fills shards in. Names hf_to_gguf_name does not know sort last, by name.
void sort_hf_state_dict_order(std::vector<std::string>& hf_names);

// Every canonical tensor a model with `config` has, in layer order (token_embd, blk.0.*, ..., output_norm,
// output), with its GGUF shape (ne). `output.weight` is left out when the embeddings are tied.
std::vector<TensorInfo> expected_tensors(const ModelConfig& config);

// How many heads the rows of `gguf_name` must be permuted over for `config`, or 0 if the tensor is not permuted
// (everything except llama's attn_q.weight / attn_k.weight).
int64_t rope_permute_heads(const ModelConfig& config, const std::string& gguf_name);

// Reorders the rows (ne[1]) of a tensor of any type head by head: to_gguf moves HF row h*d + half*d/2 + i to
// h*d + 2*i + half (d = rows / n_head); !to_gguf undoes it. Throws Error naming the tensor if rows do not split.
Tensor permute_rope_rows(const Tensor& tensor, int64_t n_head, bool to_gguf);

}  // namespace lowbit
