#include "model/tensor_layout.h"

#include <string>

namespace lowbit {
namespace {

TensorInfo make_info(std::string name, DType type, int64_t ne0, int64_t ne1 = 0) {
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.n_dims = ne1 > 0 ? 2 : 1;
  t.ne = {ne0, ne1 > 0 ? ne1 : 1, 1, 1};
  return t;
}

}  // namespace

std::vector<TensorInfo> llama_tensor_layout(const ModelConfig& c, DType weight_type) {
  const DType f32 = DType::F32;
  std::vector<TensorInfo> v;
  v.push_back(make_info("token_embd.weight", weight_type, c.n_embd, c.n_vocab));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    v.push_back(make_info(p + "attn_norm.weight", f32, c.n_embd));
    v.push_back(make_info(p + "attn_q.weight", weight_type, c.n_embd, c.n_embd_q()));
    v.push_back(make_info(p + "attn_k.weight", weight_type, c.n_embd, c.n_embd_kv()));
    v.push_back(make_info(p + "attn_v.weight", weight_type, c.n_embd, c.n_embd_kv()));
    if (c.attn_qkv_bias) {
      v.push_back(make_info(p + "attn_q.bias", f32, c.n_embd_q()));
      v.push_back(make_info(p + "attn_k.bias", f32, c.n_embd_kv()));
      v.push_back(make_info(p + "attn_v.bias", f32, c.n_embd_kv()));
    }
    if (c.attn_qk_norm) {
      v.push_back(make_info(p + "attn_q_norm.weight", f32, c.n_embd_head()));
      v.push_back(make_info(p + "attn_k_norm.weight", f32, c.n_embd_head()));
    }
    v.push_back(make_info(p + "attn_output.weight", weight_type, c.n_embd_q(), c.n_embd));
    v.push_back(make_info(p + "ffn_norm.weight", f32, c.n_embd));
    v.push_back(make_info(p + "ffn_gate.weight", weight_type, c.n_embd, c.n_ff));
    v.push_back(make_info(p + "ffn_up.weight", weight_type, c.n_embd, c.n_ff));
    v.push_back(make_info(p + "ffn_down.weight", weight_type, c.n_ff, c.n_embd));
  }
  v.push_back(make_info("output_norm.weight", f32, c.n_embd));
  if (!c.tied_embeddings) v.push_back(make_info("output.weight", weight_type, c.n_embd, c.n_vocab));
  return v;
}

}  // namespace lowbit
