#include "support/wiki_head_kld.h"

#include <memory>

#include "eval/perplexity.h"
#include "io/model_source.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "util/atomic_file.h"

namespace lowbit {
namespace {

PerplexityResult run_on_wiki_head(const std::string& model_path, PerplexityOptions o) {
  std::shared_ptr<const ModelSource> src = open_model(model_path);
  Tokenizer tok(src->vocab());
  LlamaModel model(src, {128, 2});
  o.n_ctx = 128;
  o.n_chunks = 8;
  o.bos = tok.vocab().bos_id;
  const std::string text = read_text_file(std::string(LOWBIT_SOURCE_DIR) + "/data/wiki.test.head.raw");
  return compute_perplexity(model, tok.encode(text, true), o);
}

}  // namespace

void save_wiki_head_logits(const std::string& model_path, const std::string& logits_path) {
  PerplexityOptions o;
  o.save_logits = logits_path;
  run_on_wiki_head(model_path, o);
}

double wiki_head_kld(const std::string& model_path, const std::string& base_logits_path) {
  PerplexityOptions o;
  o.kld_base = base_logits_path;
  return run_on_wiki_head(model_path, o).kld->kld_mean;
}

}  // namespace lowbit
