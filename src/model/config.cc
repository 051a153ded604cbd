#include "model/config.h"

#include "util/error.h"

namespace lowbit {

void ModelConfig::validate(const std::string& where) const {
  check(n_vocab > 0, where, "vocabulary size must be positive, got {}", n_vocab);
  check(n_embd > 0, where, "embedding size must be positive, got {}", n_embd);
  check(n_layer > 0, where, "layer count must be positive, got {}", n_layer);
  check(n_head > 0, where, "head count must be positive, got {}", n_head);
  check(n_head_kv > 0 && n_head % n_head_kv == 0, where, "{} heads is not a multiple of {} kv heads", n_head,
        n_head_kv);
  check(head_dim > 0 || n_embd % n_head == 0, where, "embedding size {} is not a multiple of {} heads", n_embd,
        n_head);
  check(n_embd_head() % 2 == 0, where, "head size {} must be even for rotary embeddings", n_embd_head());
  check(n_ff > 0, where, "feed-forward size must be positive, got {}", n_ff);
  check(norm_eps > 0.0f, where, "norm epsilon must be positive");
  check(rope.theta > 0.0f, where, "rope theta must be positive");
}

}  // namespace lowbit
