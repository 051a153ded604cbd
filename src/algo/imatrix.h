// Importance matrices: per linear layer, the per-input-column sum of squared activations seen on calibration
// text, and how many activation rows (tokens) were summed. The quantizers weight each column's rounding error by
// the mean, sum2[j] / count. Files are llama.cpp's: the legacy `.dat` and the GGUF form (`*.in_sum2`, `*.counts`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

struct ImatrixEntry {
  std::vector<float> sum2;  // per input column
  float count = 0;          // activation rows summed (for a legacy .dat file: its ncall, see read_imatrix)
  int32_t ncall = 0;        // matmul calls (legacy .dat bookkeeping)
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;  // by weight tensor name, e.g. "blk.0.attn_q.weight"
  std::vector<std::string> datasets;            // calibration files used
  int32_t chunks = 0;                           // chunks processed
  int32_t chunk_size = 0;                       // tokens per chunk (0 if unknown, as in .dat files)

  // The quantizer weights for a tensor, sum2[j] / count in float as llama-quantize computes them; nullopt if absent.
  std::optional<std::vector<float>> importance(const std::string& tensor_name) const;
  // Adds another matrix's statistics (llama-imatrix --in-file semantics). Throws Error on a size mismatch.
  void merge(const Imatrix& other, const std::string& where);
};

// Reads either format (GGUF recognised by its magic). For a legacy .dat, each entry's stored values are
// mean * ncall, so sum2 = stored and count = ncall reproduce llama-quantize's weights exactly.
// Throws Error naming the file for anything malformed.
Imatrix read_imatrix(const std::string& path);
Imatrix parse_imatrix_dat(std::span<const uint8_t> bytes, const std::string& where);

// Collects statistics from the engine's matrix multiplications as llama-imatrix does: every `blk.*` weight
// (and output.weight with process_output), skipping calls with fewer than 16 token rows, sums of squares in
// float, one call counted per multiplication.
class ImatrixCollector {
 public:
  explicit ImatrixCollector(bool process_output = false) : process_output_(process_output) {}
  void observe(const std::string& weight_name, const float* x, int64_t n_tokens, int64_t n_in);
  Imatrix& imatrix() { return imatrix_; }

 private:
  bool process_output_;
  Imatrix imatrix_;
};

class LlamaModel;

// llama-imatrix's run: the tokens cut into chunks of `ctx` (each starting with `bos` when >= 0), every chunk
// evaluated once, statistics added to `collector`. n_chunks < 0: all full chunks. `after_chunk(done, total)` is
// called after each chunk (progress, periodic saves). Throws Error if there is not one full chunk. Returns the
// number of chunks processed.
int64_t collect_imatrix(LlamaModel& model, const std::vector<int32_t>& tokens, int64_t ctx, int64_t n_chunks,
                        int32_t bos, ImatrixCollector& collector,
                        const std::function<void(int64_t, int64_t)>& after_chunk = nullptr);

enum class ImatrixFormat { Dat, Gguf };
// `.gguf` suffix -> Gguf, anything else -> Dat (llama.cpp c392e50's only format).
ImatrixFormat imatrix_format_for_path(const std::string& path);
void write_imatrix(const std::string& path, const Imatrix& imatrix, ImatrixFormat format);

}  // namespace lowbit
