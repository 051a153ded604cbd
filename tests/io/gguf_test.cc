#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "algo/gguf_quantize.h"
#include "io/converted_source.h"
#include "io/gguf_source.h"
#include "io/hf_source.h"
#include "io/hf_tokenizer_writer.h"
#include "io/model_source.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace lowbit {
namespace {

const std::string kRef = std::string(LOWBIT_SHARED_DATA) + "/models/lowbit-tiny-gutenberg/llama.cpp-reference/";

GgufMetadata sample_metadata() {
  GgufMetadata m;
  m.set("general.architecture", GgufValue::of_string("llama"));
  m.set("u8", GgufValue{GgufType::UINT8, 200});
  GgufValue i8;
  i8.type = GgufType::INT8;
  i8.i = -5;
  m.set("i8", i8);
  m.set("u32", GgufValue::of_u32(123456));
  m.set("i32", GgufValue::of_i32(-7));
  m.set("u64", GgufValue::of_u64(uint64_t{1} << 40));
  m.set("f32", GgufValue::of_f32(0.25f));
  GgufValue f64;
  f64.type = GgufType::FLOAT64;
  f64.f = -1.5e300;
  m.set("f64", f64);
  m.set("flag", GgufValue::of_bool(true));
  m.set("names", GgufValue::of_strings({"a", "", "héllo"}));
  m.set("nested", GgufValue::of_array(GgufType::ARRAY, {GgufValue::of_i32s({1, 2}), GgufValue::of_i32s({})}));
  return m;
}

std::vector<Tensor> sample_tensors() {
  return {make_f32_tensor("a", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), make_f32_tensor("b", {3}, {9, 10, 11})};
}

TEST(Gguf, RoundTripsEveryValueType) {
  const auto bytes = serialize_gguf(sample_metadata(), sample_tensors());
  const GgufFile g = parse_gguf(bytes, "mem.gguf");
  const auto& m = g.metadata;
  EXPECT_EQ(m.get_uint("u8", "x"), 200u);
  EXPECT_EQ(m.get_int("i8", "x"), -5);
  EXPECT_EQ(m.get_uint("u32", "x"), 123456u);
  EXPECT_EQ(m.get_int("i32", "x"), -7);
  EXPECT_EQ(m.get_uint("u64", "x"), uint64_t{1} << 40);
  EXPECT_EQ(m.get_f32("f32", "x"), 0.25f);
  EXPECT_EQ(m.find("f64")->f, -1.5e300);
  EXPECT_TRUE(m.get_bool("flag", "x"));
  EXPECT_EQ(m.get_strings("names", "x"), (std::vector<std::string>{"a", "", "héllo"}));
  EXPECT_EQ(m.find("nested")->array[0].array[1].i, 2);
  EXPECT_THROW(m.get_uint("i8", "x"), Error);   // negative
  EXPECT_THROW(m.get_string("u32", "x"), Error);  // wrong type
  EXPECT_THROW(m.get_uint("missing", "x"), Error);
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[1].offset, 32u);  // 32 bytes of "a", aligned to 32
  const Tensor b = g.tensor("b");
  float v[3];
  std::memcpy(v, bytes.data() + g.data_offset + 32, sizeof(v));
  EXPECT_EQ(v[2], 11.0f);
  EXPECT_EQ(b.info.ne[0], 3);
  // Re-serializing what was read gives the same bytes.
  EXPECT_EQ(serialize_gguf(g.metadata, {make_f32_tensor("a", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}),
                                        make_f32_tensor("b", {3}, {9, 10, 11})}),
            bytes);
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  const auto bytes = serialize_gguf(sample_metadata(), sample_tensors());
  for (size_t n = 0; n < bytes.size(); ++n) {
    // Data padding after the last tensor is not needed: a file cut inside it is still complete.
    const bool complete = n >= bytes.size() - 32 + 12;
    std::span<const uint8_t> cut(bytes.data(), n);
    if (complete) {
      EXPECT_NO_THROW(parse_gguf(cut, "cut.gguf")) << n;
    } else {
      EXPECT_THROW(parse_gguf(cut, "cut.gguf"), Error) << "truncated at " << n;
    }
  }
}

// Overwrites 8 bytes at `pos` and expects a one-line Error.
void expect_rejected(std::vector<uint8_t> bytes, size_t pos, uint64_t value, const char* what) {
  std::memcpy(bytes.data() + pos, &value, sizeof(value));
  try {
    parse_gguf(bytes, "bad.gguf");
    ADD_FAILURE() << what << ": accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Gguf, HostileHeaders) {
  GgufMetadata m;
  m.set("k", GgufValue::of_u32(1));
  const auto bytes = serialize_gguf(m, {make_f32_tensor("t", {4}, {1, 2, 3, 4})});
  // layout: magic 0, version 4, n_tensors 8, n_kv 16, key len 24, "k" 32, type 33, value 37,
  // tensor name len 41, "t" 49, n_dims 50, ne0 54, type 62, offset 66
  expect_rejected(bytes, 0, 0x12345678, "bad magic");
  expect_rejected(bytes, 4, 1, "version 1");
  expect_rejected(bytes, 8, uint64_t{1} << 60, "huge tensor count");
  expect_rejected(bytes, 16, uint64_t{1} << 62, "huge kv count");
  expect_rejected(bytes, 24, uint64_t{1} << 40, "huge key length");
  expect_rejected(bytes, 33, 99, "unknown value type");
  expect_rejected(bytes, 41, 0xFFFFFFFFFFFFull, "huge name length");
  expect_rejected(bytes, 50, 9, "9 dims");
  expect_rejected(bytes, 54, uint64_t{1} << 62, "overflowing shape");
  expect_rejected(bytes, 54, 1000, "data past the end");
  expect_rejected(bytes, 62, 4, "removed type id");
  expect_rejected(bytes, 62, 2, "q4_0 row of 4");
  expect_rejected(bytes, 66, 7, "misaligned offset");
  expect_rejected(bytes, 66, 4096, "offset past the end");
  // A zero dimension does not excuse an overflowing row count (found by the GGUF fuzzer): ne = {0, 2^62, 4}.
  // layout as above up to n_dims 50; ne0 54, ne1 62, ne2 70.
  auto three = serialize_gguf(m, {make_f32_tensor("t", {1, 1, 1}, {1})});
  const uint64_t zero = 0, big = uint64_t{1} << 62;
  std::memcpy(three.data() + 54, &zero, 8);
  std::memcpy(three.data() + 62, &big, 8);
  EXPECT_NO_THROW(parse_gguf(three, "ok.gguf"));  // {0, 2^62, 1}: no row count overflows
  expect_rejected(three, 70, 4, "zero dimension beside an overflowing row count");
  // duplicate key, bad UTF-8, duplicate tensor
  GgufMetadata dup;
  dup.append_unchecked("k", GgufValue::of_u32(1));
  dup.append_unchecked("k", GgufValue::of_u32(2));
  EXPECT_THROW(parse_gguf(serialize_gguf(dup, {}), "dup.gguf"), Error);
  GgufMetadata bad;
  bad.set("\xff\xfe", GgufValue::of_u32(1));
  EXPECT_THROW(parse_gguf(serialize_gguf(bad, {}), "utf8.gguf"), Error);
  EXPECT_THROW(serialize_gguf(m, {make_f32_tensor("t", {1}, {1}), make_f32_tensor("t", {1}, {2})}), Error);
}

TEST(Gguf, ReferenceFilesRewriteByteIdentically) {
  if (!std::filesystem::exists(kRef)) GTEST_SKIP() << "llama.cpp reference files not present at " << kRef;
  for (const char* name : {"model-f32.gguf", "model-q4_0.gguf", "model-q4_k_m.gguf", "model-q2_k.gguf"}) {
    const GgufFile g = open_gguf(kRef + name);
    std::vector<Tensor> tensors;
    for (const auto& t : g.tensors) tensors.push_back(g.tensor(t.info.name));
    const auto bytes = serialize_gguf(g.metadata, tensors);
    const auto original = g.file->bytes();
    ASSERT_EQ(bytes.size(), original.size()) << name;
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), original.begin())) << name;
  }
}

TEST(Gguf, ModelSourceAndConverterMetadata) {
  if (!std::filesystem::exists(kRef)) GTEST_SKIP() << "llama.cpp reference files not present";
  const GgufFile g = open_gguf(kRef + "model-f32.gguf");
  const ModelConfig c = gguf_model_config(g);
  EXPECT_EQ(c.n_embd, 256);
  EXPECT_EQ(c.n_layer, 4);
  EXPECT_EQ(c.n_ff, 512);
  EXPECT_EQ(c.n_vocab, 4096);
  EXPECT_TRUE(c.tied_embeddings);
  const Vocab v = gguf_vocab(g.metadata, g.path);
  EXPECT_EQ(v.tokens.size(), 4096u);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_TRUE(v.add_bos);
  // The converter's metadata: same keys, types and values, in the same order, as convert_hf_to_gguf.py wrote.
  GgufModelInfo info{"Hf", 0, 3672320};
  const GgufMetadata ours = gguf_metadata_for_model(c, v, info);
  ASSERT_EQ(ours.items().size(), g.metadata.items().size());
  for (size_t i = 0; i < ours.items().size(); ++i) {
    const auto& [k1, v1] = ours.items()[i];
    const auto& [k2, v2] = g.metadata.items()[i];
    EXPECT_EQ(k1, k2) << i;
    EXPECT_EQ(v1.type, v2.type) << k1;
    EXPECT_EQ(v1.to_display_string(100000), v2.to_display_string(100000)) << k1;
  }
  EXPECT_EQ(gguf_size_label(3672320), "3.7M");
  EXPECT_EQ(gguf_size_label(8.03e9), "8.0B");
  EXPECT_EQ(gguf_size_label(70.6e9), "71B");
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// HF folder -> GGUF -> HF folder gives back the same safetensors bytes (F16 as stored; F32 and BF16 as converted),
// and the exported tokenizer reads back as the same vocabulary.
TEST(Gguf, HfToGgufToHfRoundTripIsBitIdentical) {
  const std::string models = std::string(LOWBIT_SOURCE_DIR) + "/models/";
  const std::string dir = testing::TempDir() + "/roundtrip";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::shared_ptr<const ModelSource> hf = open_model(models + "tiny-gutenberg");
  for (DType type : {DType::F16, DType::F32, DType::BF16}) {
    const std::string name = dtype_name(type);
    // reference: the HF folder re-exported in this type directly
    write_hf_model(*convert_types(hf, type, false), dir + "/direct-" + name);
    GgufQuantizeOptions o;
    o.converter_layout = true;
    o.mix.ftype = type == DType::F16 ? FileType::F16 : type == DType::F32 ? FileType::ALL_F32 : FileType::BF16;
    quantize_to_gguf(hf, dir + "/m-" + name + ".gguf", o);
    std::shared_ptr<const ModelSource> g = open_model(dir + "/m-" + name + ".gguf");
    const std::string back = dir + "/back-" + name;
    write_hf_model(*convert_types(g, type, false), back);
    write_hf_tokenizer(g->vocab(), back);
    const std::string bytes = read_text_file(back + "/model.safetensors");
    EXPECT_TRUE(bytes == read_text_file(dir + "/direct-" + name + "/model.safetensors")) << name;
    if (type == DType::F16) {  // the original file, byte for byte
      EXPECT_TRUE(bytes == read_text_file(models + "tiny-gutenberg/model.safetensors"));
    }
    std::shared_ptr<const ModelSource> again = open_model(back);
    EXPECT_EQ(again->vocab().tokens, hf->vocab().tokens);
    EXPECT_EQ(again->vocab().scores, hf->vocab().scores);
    EXPECT_EQ(again->vocab().types, hf->vocab().types);
    EXPECT_EQ(again->config().n_layer, hf->config().n_layer);
  }
}

}  // namespace
}  // namespace lowbit
