// AWQ on a decoder layer of a model (AutoAWQ's per-layer step): capture the inputs of the layer's linears,
// search the scales of each group of linears sharing an input ({q,k,v} after the attention norm, {o} after v,
// {gate,up} after the FFN norm, {down} after up), all on the unscaled layer, then apply them: the group's
// weights get W diag(s) and the producer of their input is divided by s (the norm weight, or the rows of v / up).
// The layer's scaled tensors replace the originals in the overlay; what each format then does with the scaled
// weights (AWQ's clip search and integer quantization, or a ggml block type) is up to the caller.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "algo/awq.h"
#include "algo/calibration.h"

namespace lowbit {

struct AwqLayerScaling {
  int64_t n_tokens = 0;
  // Per linear (GGUF name): its scaled weights [n_out][n_in] in GGUF row order, and the scaled inputs it sees
  // [n_tokens][n_in]; and per group the search result.
  std::map<std::string, std::vector<float>> weights;
  std::map<std::string, std::vector<float>> inputs;
  std::map<std::string, AwqScaleResult> scales;  // keyed by the group's first linear
};

// `max_tokens`: the captured inputs are every k-th token so that at most this many are kept (the scale search
// costs n_grid forward passes over them). Skips the {o} group when v's rows are not o's inputs (grouped-query
// attention), as AutoAWQ does.
AwqLayerScaling awq_scale_layer(LayerwiseCalibration& cal, OverlaySource& overlay, int64_t layer,
                                const AwqOptions& options, int64_t max_tokens);

}  // namespace lowbit
