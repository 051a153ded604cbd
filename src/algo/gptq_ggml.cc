#include "algo/gptq_ggml.h"

#include <cmath>
#include <cstring>
#include <memory>

#include "util/error.h"

namespace lowbit {

int nearest_level(const float* table, int n_levels, float w) {
  const bool increasing = table[n_levels - 1] >= table[0];
  int lo = 0, hi = n_levels - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if ((table[mid] <= w) == increasing) lo = mid;
    else hi = mid;
  }
  return std::fabs(w - table[hi]) < std::fabs(w - table[lo]) ? hi : lo;
}

namespace {

class GgmlGrid : public GptqGrid {
 public:
  GgmlGrid(DType type, int64_t n_in, const float* importance, std::vector<uint8_t>& out)
      : traits_(type_traits(type)), n_in_(n_in), importance_(importance), out_(out) {}
  int64_t group_len(int64_t) const override { return traits_.block_size; }
  std::unique_ptr<GptqRowGrid> row(int64_t r, const float*) override { return std::make_unique<Row>(*this, r); }

 private:
  struct Row : GptqRowGrid {
    Row(GgmlGrid& g, int64_t r)
        : g(g), row_bytes(lowbit::row_bytes(g.traits_.type, g.n_in_)), bs(g.traits_.block_size),
          row_out(g.out_.data() + static_cast<size_t>(r) * row_bytes), levels(static_cast<size_t>(bs)),
          table(static_cast<size_t>(bs * g.traits_.n_levels)), scratch(g.traits_.block_bytes),
          values(static_cast<size_t>(bs)) {}

    // The block's scales come from ggml's search on the current weights; the value of every level of every
    // element is then read back by writing that level everywhere and dequantizing.
    void begin_group(int64_t col, const float* w, int64_t len) override {
      const auto& t = g.traits_;
      check(len == bs, t.name, "GPTQ group of {} columns is not one block of {}", len, bs);
      block = row_out + static_cast<size_t>(col / bs) * t.block_bytes;
      quantize_rows(t.type, w, block, 1, bs, g.importance_ ? g.importance_ + col : nullptr, t.name);
      const int n_levels = t.n_levels;
      for (int level = 0; level < n_levels; ++level) {
        std::memcpy(scratch.data(), block, t.block_bytes);
        std::fill(levels.begin(), levels.end(), static_cast<uint8_t>(level));
        t.set_levels(scratch.data(), levels.data(), bs);
        t.to_float(scratch.data(), values.data(), bs);
        for (int64_t i = 0; i < bs; ++i) table[static_cast<size_t>(i * n_levels + level)] = values[static_cast<size_t>(i)];
      }
      start = col;
    }
    float round(int64_t col, float w) override {
      const int n_levels = g.traits_.n_levels;
      const int64_t i = col - start;
      const float* tab = table.data() + i * n_levels;
      const int level = nearest_level(tab, n_levels, w);
      levels[static_cast<size_t>(i)] = static_cast<uint8_t>(level);
      if (i == bs - 1) g.traits_.set_levels(block, levels.data(), bs);
      return tab[level];
    }

    GgmlGrid& g;
    size_t row_bytes;
    int64_t bs;
    uint8_t* row_out;
    uint8_t* block = nullptr;
    int64_t start = 0;
    std::vector<uint8_t> levels;
    std::vector<float> table;  // [element][level]
    std::vector<uint8_t> scratch;
    std::vector<float> values;
  };

  const TypeTraits& traits_;
  int64_t n_in_;
  const float* importance_;
  std::vector<uint8_t>& out_;
};

}  // namespace

GgmlGptqResult gptq_quantize_ggml(const float* W, int64_t n_out, int64_t n_in, const HessianAccumulator& hessian,
                                  DType type, const GptqOptions& options, const float* importance) {
  const TypeTraits& t = type_traits(type);
  check(t.set_levels != nullptr && t.quantize != nullptr, "gptq", "GPTQ cannot write {} (no level grid)", t.name);
  check(n_in > 0 && n_in % t.block_size == 0, "gptq", "rows of {} values do not split into {} blocks of {}", n_in,
        t.name, t.block_size);
  check(hessian.n_in() == n_in, "gptq", "Hessian is for {} inputs, layer has {}", hessian.n_in(), n_in);
  std::vector<float> diag;
  if (!importance) {
    diag.resize(static_cast<size_t>(n_in));
    for (int64_t i = 0; i < n_in; ++i) diag[static_cast<size_t>(i)] = static_cast<float>(hessian.matrix()[static_cast<size_t>(i * n_in + i)]);
    importance = diag.data();
  }
  GgmlGptqResult result;
  result.bytes.assign(row_bytes(type, n_in) * static_cast<size_t>(n_out), 0);
  GgmlGrid grid(type, n_in, importance, result.bytes);
  GptqOptions o = options;
  o.block_size = static_cast<int>(t.block_size);
  const GptqRun run = gptq_run(W, n_out, n_in, hessian, {}, grid, o);
  result.loss = run.loss;
  result.damp_percent = run.damp_percent;
  result.dead_columns = run.dead_columns;
  return result;
}

}  // namespace lowbit
