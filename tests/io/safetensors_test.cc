#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/float_formats.h"
#include "util/atomic_file.h"
#include "support/temp_files.h"
#include "util/error.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const std::string kGutenberg = std::string(LOWBIT_SOURCE_DIR) + "/models/tiny-gutenberg/model.safetensors";


// A file built by hand: header JSON + data.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes, "x.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}


const std::string kSmallHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("b":{"dtype":"F16","shape":[2],"data_offsets":[24,28]}})";

std::vector<uint8_t> small_data() {
  std::vector<uint8_t> d(28);
  const float a[6] = {1, 2, 3, 4, 5, NAN};
  std::memcpy(d.data(), a, 24);
  const uint16_t b[2] = {f32_to_f16(0.5f), f32_to_f16(-2.0f)};
  std::memcpy(d.data() + 24, b, 4);
  return d;
}

TEST(Safetensors, ParsesShapesTypesAndMetadata) {
  const auto bytes = make_file(kSmallHeader, small_data());
  const auto h = parse_safetensors(bytes, "x");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  const auto* a = h.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->info.type, DType::F32);
  EXPECT_EQ(a->info.n_dims, 2);
  EXPECT_EQ(a->info.ne[0], 3);  // torch [2,3] -> ne {3,2}
  EXPECT_EQ(a->info.ne[1], 2);
  EXPECT_EQ(h.data_offset, 8 + kSmallHeader.size());
  EXPECT_EQ(h.find("b")->begin, 24u);
}

TEST(Safetensors, GutenbergTensorsAreViews) {
  auto set = SafetensorsSet::open(kGutenberg);
  const auto t = set->tensor("model.embed_tokens.weight");
  EXPECT_EQ(t.type(), DType::F16);
  EXPECT_EQ(t.ne()[0], 256);
  EXPECT_EQ(t.ne()[1], 4096);
  const auto raw = test::read_file_bytes(kGutenberg);
  EXPECT_EQ(std::memcmp(t.data, raw.data() + 8 + 4048, 64), 0);
  EXPECT_EQ(set->metadata().at("format"), "pt");
}

// Rewriting a file the safetensors library wrote gives the same bytes: same order, header, padding.
TEST(Safetensors, WriterReproducesHuggingFaceBytes) {
  auto set = SafetensorsSet::open(kGutenberg);
  std::vector<TensorInfo> infos;
  for (const auto& n : set->names()) infos.push_back(set->entry(n).info);
  std::reverse(infos.begin(), infos.end());  // declaration order must not matter within a shard
  const auto dir = test::fresh_temp_dir("st_rewrite");
  const auto out = (dir / "model.safetensors").string();
  SafetensorsWriter w(out, infos, {{"format", "pt"}});
  for (const auto& n : w.write_order()) w.write(n, set->tensor(n).bytes());
  const auto paths = w.finish();
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(test::read_file_bytes(out), test::read_file_bytes(kGutenberg));
  fs::remove_all(dir);
}

TEST(Safetensors, WriterShardsWithIndex) {
  auto set = SafetensorsSet::open(kGutenberg);
  std::vector<TensorInfo> infos;
  for (const auto& n : set->names()) infos.push_back(set->entry(n).info);
  const auto dir = test::fresh_temp_dir("st_shard");
  const auto out = (dir / "model.safetensors").string();
  SafetensorsWriter w(out, infos, {{"format", "pt"}}, {.max_shard_bytes = 3'000'000});
  for (const auto& n : w.write_order()) w.write(n, set->tensor(n).bytes());
  const auto paths = w.finish();
  EXPECT_EQ(w.n_shards(), 3);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::exists(dir / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model-00003-of-00003.safetensors"));
  const auto index = read_text_file((dir / "model.safetensors.index.json").string());
  EXPECT_NE(index.find("\"total_size\": 7344640"), std::string::npos) << index;
  auto back = SafetensorsSet::open((dir / "model.safetensors.index.json").string());
  ASSERT_EQ(back->names().size(), set->names().size());
  for (const auto& n : set->names()) {
    const auto a = set->tensor(n), b = back->tensor(n);
    ASSERT_EQ(a.info.ne, b.info.ne);
    ASSERT_EQ(std::memcmp(a.data, b.data, a.bytes().size()), 0) << n;
  }
  // A missing shard is named when a tensor in it is needed.
  fs::remove(dir / "model-00002-of-00003.safetensors");
  auto broken = SafetensorsSet::open((dir / "model.safetensors.index.json").string());
  std::string msg;
  for (const auto& n : broken->names()) {
    try {
      broken->tensor(n);
    } catch (const Error& e) {
      msg = e.what();
      break;
    }
  }
  EXPECT_NE(msg.find("model-00002-of-00003.safetensors"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(Safetensors, IndexNamingATensorAbsentFromItsShard) {
  const auto dir = test::fresh_temp_dir("st_absent");
  const auto bytes = make_file(kSmallHeader, small_data());
  write_file_atomic((dir / "s1.safetensors").string(), bytes);
  write_file_atomic((dir / "model.safetensors.index.json").string(),
                    std::string(R"({"weight_map":{"a":"s1.safetensors","zz":"s1.safetensors"}})"));
  auto set = SafetensorsSet::open((dir / "model.safetensors.index.json").string());
  EXPECT_EQ(set->tensor("a").info.ne[0], 3);
  try {
    set->tensor("zz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'zz'"), std::string::npos) << e.what();
  }
  write_file_atomic((dir / "model.safetensors.index.json").string(),
                    std::string(R"({"weight_map":{"a":"../s1.safetensors"}})"));
  EXPECT_THROW(SafetensorsSet::open((dir / "model.safetensors.index.json").string()), Error);
  fs::remove_all(dir);
}

TEST(Safetensors, NanValuesAreReadAsIs) {
  const auto bytes = make_file(kSmallHeader, small_data());
  const auto h = parse_safetensors(bytes, "x");
  float v[6];
  std::memcpy(v, bytes.data() + h.data_offset, 24);
  EXPECT_TRUE(std::isnan(v[5]));
}

TEST(Safetensors, EveryTruncationIsRejected) {
  const auto bytes = make_file(kSmallHeader, small_data());
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    EXPECT_NE(parse_error(cut), "") << n;
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_NE(parse_error(longer), "");
}

TEST(Safetensors, HostileHeadersGiveClearErrors) {
  const auto d = small_data();
  struct Case {
    std::string header;
    std::string expect;
  };
  const Case cases[] = {
      {"[1,2]", "does not start"},
      {"{\"a\":1", "not valid JSON"},
      {R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"a":{"dtype":"F16","shape":[2],)"
       R"("data_offsets":[24,28]}})",
       "twice"},
      {R"({"a":{"dtype":"Q4","shape":[7],"data_offsets":[0,28]}})", "unsupported dtype 'Q4'"},
      {R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,28]}})", "needs 32"},
      {R"({"a":{"dtype":"F32","shape":"7","data_offsets":[0,28]}})", "no shape array"},
      {R"({"a":{"dtype":"F32","shape":[-7],"data_offsets":[0,28]}})", "non-negative"},
      {R"({"a":{"dtype":"F32","shape":[1,1,1,1,7],"data_offsets":[0,28]}})", "5 dimensions"},
      {R"({"a":{"dtype":"F32","shape":[7],"data_offsets":[0,28,3]}})", "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[7],"data_offsets":[4,32]}})", "run past"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],)"
       R"("data_offsets":[12,28]}})",
       "overlap"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],)"
       R"("data_offsets":[20,28]}})",
       "gap"},
      {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "cover 16"},
      {R"({"__metadata__":{"k":1},"a":{"dtype":"U8","shape":[28],"data_offsets":[0,28]}})", "not a string"},
      {"{\"\xff\":{\"dtype\":\"U8\",\"shape\":[28],\"data_offsets\":[0,28]}}", "JSON"},
      {R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,28]}})", "overflow"},
      {R"({"a":{"dtype":"U8","shape":[28],"data_offsets":[0,28],"extra":1}})", "unknown field"},
      {R"({"a":{"dtype":"U8","shape":[[[28]]],"data_offsets":[0,28]}})", "nested deeper"},
      {R"({"a":{"dtype":"U8","shape":[28],"data_offsets":[0,28],"dtype":"U8"}})", "'dtype' twice"},
  };
  for (const auto& c : cases) {
    const auto msg = parse_error(make_file(c.header, d));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.header << " -> " << msg;
    EXPECT_EQ(msg.rfind("x.safetensors: ", 0), 0u) << msg;
  }
  // A header length beyond the cap or the file.
  std::vector<uint8_t> huge(16, 0);
  huge[5] = 1;  // 2^40
  EXPECT_NE(parse_error(huge).find("limit"), std::string::npos);
  huge[5] = 0;
  huge[0] = 100;
  EXPECT_NE(parse_error(huge).find("past the end"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
