#include "ops/packed_weight.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "support/weight_matrices.h"

namespace lowbit {
namespace {

Tensor weight(DType type, int64_t n_in, const std::vector<float>& values) {
  return testing_support::quantized_matrix(type, n_in, static_cast<int64_t>(values.size()) / n_in, values.data());
}

// pack_tile gives pack_for_matmul's bytes for a tile, from any layout, and repeats the last row of a partial tile;
// Q3_K and Q6_K check the units' encoding, Q4_K and IQ4_XS the chunk positions.
TEST(PackedWeight, PackTileWritesPackForMatmulsTile) {
  const int64_t n_in = 512, n_out = 40, tile = 16;
  std::vector<float> values(static_cast<size_t>(n_in * n_out));
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + i % 5);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q3_K, DType::Q6_K, DType::IQ4_XS}) {
    const Tensor t = weight(type, n_in, values);
    const Tensor by16 = pack_for_matmul(t, tile), by8 = pack_for_matmul(t, 8);
    const size_t tile_bytes = static_cast<size_t>(tile) * t.info.n_bytes() / n_out;
    std::vector<uint8_t> got(tile_bytes);
    for (const Tensor* from : {&t, &by8, &by16}) {
      pack_tile(from->data, weight_layout(*from), tile, tile, tile, got.data());
      EXPECT_EQ(0, std::memcmp(got.data(), by16.data + tile_bytes, tile_bytes)) << dtype_name(type);
    }
    // Rows 32..39, then row 39 eight more times: a 16-row tensor of them, packed whole.
    std::vector<float> last(values.begin() + 32 * n_in, values.end());
    for (int i = 0; i < 8; ++i) last.insert(last.end(), values.end() - n_in, values.end());
    const Tensor want = pack_for_matmul(weight(type, n_in, last), tile);
    pack_tile(by16.data, weight_layout(by16), 32, 8, tile, got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data, tile_bytes)) << dtype_name(type) << " partial";
  }
}

}  // namespace
}  // namespace lowbit
