#include "algo/calibration.h"

#include <gtest/gtest.h>

#include <string>

#include "io/memory_source.h"
#include "util/error.h"

namespace lowbit {
namespace {

std::shared_ptr<MemoryModelSource> two_layer_model() {
  ModelConfig c;
  c.n_vocab = 64, c.n_embd = 32, c.n_layer = 2, c.n_ff = 64, c.n_ctx_train = 16;
  c.n_head = 4, c.n_head_kv = 4;
  return make_random_model(c, 7);
}

// A layer's two norms go into the blobs under their names, as the overlay holds them, and to the installer; read
// back, each is the same floats.
TEST(Calibration, LayerNormsAreKeptAndReadBack) {
  auto model = two_layer_model();
  auto overlay = std::make_shared<OverlaySource>(model);
  std::vector<float> scaled = tensor_to_f32(model->tensor("blk.1.ffn_norm.weight"));
  for (float& v : scaled) v *= 3;
  overlay->replace(make_f32_tensor("blk.1.ffn_norm.weight", {32}, scaled));
  LayerBlobs blobs;
  std::vector<std::string> installed;
  keep_layer_norms(*overlay, 1, blobs, [&](const std::string& name, std::vector<float> v) {
    installed.push_back(name);
    if (name == "blk.1.ffn_norm.weight") {
      EXPECT_EQ(v, scaled);
    }
  });
  EXPECT_EQ(installed, (std::vector<std::string>{"blk.1.attn_norm.weight", "blk.1.ffn_norm.weight"}));
  ASSERT_EQ(blobs.size(), 2u);
  EXPECT_EQ(blobs[1].first, "norm:blk.1.ffn_norm.weight");
  EXPECT_EQ(saved_norm(*model, "blk.1.ffn_norm.weight", blobs[1].second, "progress"), scaled);
}

// A saved norm of the wrong length, or of a tensor the model does not have, is a corrupt progress file.
TEST(Calibration, SavedNormOfTheWrongSizeIsAnError) {
  auto model = two_layer_model();
  const std::vector<uint8_t> short_norm = to_blob(std::vector<float>(31, 1.f));
  try {
    saved_norm(*model, "blk.0.attn_norm.weight", short_norm, "out.gguf.lowbit-progress");
    ADD_FAILURE() << "a 31-value norm for a 32-value tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out.gguf.lowbit-progress"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("corrupt progress file (norm:blk.0.attn_norm.weight)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(saved_norm(*model, "blk.5.attn_norm.weight", to_blob(std::vector<float>(32)), "p"), Error);
  EXPECT_THROW(saved_norm(*model, "blk.0.attn_norm.weight", std::vector<uint8_t>(7), "p"), Error);
}

}  // namespace
}  // namespace lowbit
