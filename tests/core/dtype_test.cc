#include "core/dtype.h"

#include <gtest/gtest.h>

#include <string>

#include "util/error.h"

namespace lowbit {
namespace {

TEST(DType, GgmlSizesAndIds) {
  // ggml-common.h block sizes: a wrong row here breaks every GGUF reader and writer.
  struct Row { DType t; uint32_t id; int64_t blk; size_t bytes; };
  const Row rows[] = {{DType::F32, 0, 1, 4},      {DType::F16, 1, 1, 2},      {DType::Q4_0, 2, 32, 18},
                      {DType::Q4_1, 3, 32, 20},   {DType::Q5_0, 6, 32, 22},   {DType::Q5_1, 7, 32, 24},
                      {DType::Q8_0, 8, 32, 34},   {DType::Q2_K, 10, 256, 84}, {DType::Q3_K, 11, 256, 110},
                      {DType::Q4_K, 12, 256, 144}, {DType::Q5_K, 13, 256, 176}, {DType::Q6_K, 14, 256, 210},
                      {DType::Q8_K, 15, 256, 292}, {DType::IQ4_NL, 20, 32, 18}, {DType::IQ4_XS, 23, 256, 136},
                      {DType::BF16, 30, 1, 2}};
  for (const auto& r : rows) {
    EXPECT_EQ(static_cast<uint32_t>(r.t), r.id);
    EXPECT_EQ(type_traits(r.t).block_size, r.blk) << dtype_name(r.t);
    EXPECT_EQ(type_traits(r.t).block_bytes, r.bytes) << dtype_name(r.t);
    EXPECT_EQ(dtype_from_id(r.id), r.t);
  }
  EXPECT_DOUBLE_EQ(bits_per_weight(DType::Q4_K), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(DType::Q8_0), 8.5);
}

TEST(DType, LookupByNameAndUnknownIds) {
  EXPECT_EQ(dtype_from_name("Q4_K"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("q4_k"), DType::Q4_K);
  EXPECT_FALSE(dtype_from_name("q9_9").has_value());
  EXPECT_FALSE(dtype_from_id(4).has_value());  // removed Q4_2
  EXPECT_FALSE(dtype_from_id(999999).has_value());
}

// Lookups go through an index by id (ggml's ids below 32, lowbit's own from 1000): every row is found by its own id,
// and the ids beside and between the index's two ranges are unknown.
TEST(DType, EveryRowFoundByItsIdAndNoOther) {
  for (const TypeTraits& t : all_types()) {
    EXPECT_EQ(&type_traits(t.type), &t) << t.name;
    EXPECT_EQ(dtype_from_id(static_cast<uint32_t>(t.type)), t.type) << t.name;
  }
  EXPECT_EQ(type_traits(DType::I4G).name, std::string("i4g"));
  for (uint32_t id : {5u, 21u, 31u, 32u, 33u, 999u, 1005u, 1007u, 1008u, 1032u})
    EXPECT_FALSE(dtype_from_id(id).has_value()) << id;
  EXPECT_THROW(type_traits(static_cast<DType>(1008)), Error);
  EXPECT_THROW(type_traits(static_cast<DType>(32)), Error);
}

TEST(DType, MisfitRowIsAnError) {
  float src[48] = {};
  uint16_t dst[48];
  EXPECT_NO_THROW(quantize_rows(DType::F16, src, dst, 1, 48));
  uint8_t q[64];
  EXPECT_THROW(quantize_rows(DType::Q8_0, src, q, 1, 48, nullptr, "blk.0.ffn_down.weight"), Error);
}

}  // namespace
}  // namespace lowbit
