// The lowbit binary on bad input: one line on stderr naming the file or flag, a non-zero exit, no crash.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "util/atomic_file.h"

namespace {

struct Result {
  int exit_code;
  std::string output;  // stdout + stderr
};

// env: variable settings for the command ("NAME=value ...").
Result run(const std::string& args, const std::string& env = "") {
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + LOWBIT_BINARY + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

const std::string kModels = std::string(LOWBIT_SOURCE_DIR) + "/models/";

void expect_clean_error(const std::string& args, const std::string& must_mention) {
  const Result r = run(args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << args;
  EXPECT_NE(r.output.find("lowbit: error: "), std::string::npos) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(must_mention), std::string::npos) << args << "\n" << r.output;
  // The error is a single line, and the last thing printed (progress lines may come before it).
  const size_t at = r.output.find("lowbit: error: ");
  EXPECT_EQ(r.output.find('\n', at), r.output.size() - 1) << args << "\n" << r.output;
}

TEST(Cli, BadInputsGiveOneLineErrors) {
  const std::string dir = testing::TempDir() + "/cli";
  std::filesystem::create_directories(dir);
  // a truncated GGUF (the first 1000 bytes of a real one)
  lowbit::AtomicFile out(dir + "/cut.gguf");
  std::ifstream in(kModels + "tiny-gutenberg/model.safetensors", std::ios::binary);
  const std::string gguf_head = "GGUF\x03\x00\x00\x00";
  out.write(gguf_head.data(), gguf_head.size());
  out.write_zeros(3);
  out.commit();
  expect_clean_error("inspect " + dir + "/cut.gguf", "cut.gguf");
  expect_clean_error("inspect " + dir + "/nonexistent.bin", "nonexistent.bin: no such file");
  expect_clean_error("inspect " + kModels + "README.md", "README.md");  // not a model at all
  expect_clean_error("quantize " + kModels + "tiny-gutenberg " + dir + "/x.gguf Q9_K", "unknown file type 'Q9_K'");
  expect_clean_error("quantize " + kModels + "tiny-gutenberg " + dir + "/x.gguf Q4_0 --tensor-type 'ffn_(=q8_0'",
                     "--tensor-type");
  expect_clean_error("quantize " + kModels + "tiny-gutenberg /nonexistent-dir/x.gguf Q4_0", "/nonexistent-dir/x.gguf");
  expect_clean_error("quantize --method rtn " + kModels + "tiny-gutenberg " + dir + "/x.gguf Q4_K_M", "--method");
  expect_clean_error("quantize --method gptq " + kModels + "tiny-gutenberg " + dir + "/x.gguf Q4_K_M", "--calib");
  expect_clean_error("quantize --method awq --sym --asym " + kModels + "tiny-gutenberg " + dir + "/awq", "--sym");
  expect_clean_error("quantize --method gptq --calib x " + kModels + "tiny-gutenberg " + dir + "/f Q4_K_M", "type");
  expect_clean_error("plan --params lots --mem 8GiB", "--params");
  lowbit::write_file_atomic(dir + "/short.txt", std::string("Once upon a time there was a cat."));
  expect_clean_error("perplexity " + kModels + "stories260K/stories260K.bin -f " + dir + "/short.txt -c 256",
                     "at least 512 are needed");
  lowbit::write_file_atomic(dir + "/empty.txt", std::string());
  expect_clean_error("perplexity " + kModels + "stories260K/stories260K.bin -f " + dir + "/empty.txt", "empty.txt");
  expect_clean_error("run " + kModels + "stories260K/stories260K.bin -n 600", "exceed the context");
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
  // A bad flag is CLI11's one-line message and exit code.
  const Result r = run("quantize --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
}

TEST(Cli, HelpListsEveryCommand) {
  const Result r = run("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"inspect", "convert", "quantize", "imatrix", "run", "perplexity", "bench", "eval", "plan"})
    EXPECT_NE(r.output.find(std::string("  ") + cmd), std::string::npos) << cmd;
}

}  // namespace

namespace {

TEST(Cli, CompareWritesAReportAndResumes) {
  const std::string dir = testing::TempDir() + "/compare";
  std::filesystem::remove_all(dir);
  const std::string cmd = "compare " + kModels + "tiny-gutenberg --text " + std::string(LOWBIT_SOURCE_DIR) +
                          "/data/wiki.test.head.raw --variants q8_0,q2_k,gptq-gguf:q4_0,awq:w4g128 -c 128 --chunks 4 -t 2 "
                          "--calib " + std::string(LOWBIT_SOURCE_DIR) + "/data/calib-shakespeare.txt --nsamples 4 -o " + dir;
  Result r = run(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"report.md", "report.json", "report.html", "q8_0.gguf", "q2_k.gguf", "gptq-gguf-q4_0.gguf",
                        "awq-w4g128/config.json"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  EXPECT_NE(r.output.find("| q2_k | gguf |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| gptq-gguf:q4_0 | gguf |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| awq:w4g128 | awq |"), std::string::npos) << r.output;
  const auto mtime = std::filesystem::last_write_time(dir + "/q8_0.gguf");
  r = run(cmd);  // variants already there are reused, not re-quantized
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(std::filesystem::last_write_time(dir + "/q8_0.gguf"), mtime);
  expect_clean_error("compare " + kModels + "tiny-gutenberg --text x --variants foo:w4g128 -o " + dir, "--variants");
  expect_clean_error("compare " + kModels + "tiny-gutenberg --text x --variants gptq-gguf:q9_z -o " + dir, "--variants");
  expect_clean_error("compare " + kModels + "tiny-gutenberg --text x --variants awq:w4g128 -o " + dir, "--calib");
  expect_clean_error("compare " + kModels + "tiny-gutenberg --text x --variants gptq-gguf:q4_k_m -o " + dir, "--calib");
  expect_clean_error("compare " + kModels + "tiny-gutenberg --text x --variants gptq:w4g128 -o " + dir, "--calib");
}

}  // namespace

namespace lowbit {
namespace {

// --roofline runs generation again, every repetition right after a bandwidth probe, and reports the fractions.
TEST(Cli, BenchRooflineReportsEachRepetitionAgainstItsProbe) {
  const Result r = run("bench random:tiny -p 0 -n 4 -r 3 -t 1 --roofline --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["bandwidth_samples"].size(), 3u) << r.output;
  ASSERT_EQ(j["roofline_tg_samples"].size(), 3u) << r.output;
  ASSERT_EQ(j["tests"][0]["samples"].size(), 3u) << r.output;
  // The peak memory is the model's: read before the probe's 1 GiB buffer exists.
  EXPECT_LT(j["peak_rss_bytes"].get<double>(), 512.0 * (1 << 20)) << r.output;
  const double lo = j["tg_bound_fraction"]["min"], mid = j["tg_bound_fraction"]["median"], hi = j["tg_bound_fraction"]["max"];
  EXPECT_GT(lo, 0.0);
  EXPECT_LE(lo, mid);
  EXPECT_LE(mid, hi);
  // The bound is bandwidth / bytes read per token (the weights, and the F16 KV cache at 2.5 positions on average:
  // 4 layers x 256 K and V values x 2 bytes each), with the median bandwidth.
  EXPECT_EQ(j["kv_bytes_per_token"].get<double>(), 2.5 * 4 * 256 * 2 * 2) << r.output;
  EXPECT_NEAR(j["tg_bound_t_s"].get<double>(), j["bandwidth_bytes_per_s"].get<double>() /
              (j["weight_bytes_per_token"].get<double>() + j["kv_bytes_per_token"].get<double>()), 1e-6);
  EXPECT_FALSE(j.contains("thread_round_trip_ns_samples")) << "one thread has no other to reach";

  // Two threads: where they sit, measured beside each repetition.
  const Result two = run("bench random:tiny -p 0 -n 4 -r 2 -t 2 --roofline --json");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto trips = nlohmann::json::parse(two.output)["thread_round_trip_ns_samples"];
  ASSERT_EQ(trips.size(), 2u) << two.output;
  for (const auto& ns : trips) EXPECT_GT(ns.get<double>(), 20.0) << two.output;
}

// -d: the tests run after that many tokens of context, named as llama-bench names them; the roofline counts the cache
// a token reads there (20 + 2.5 positions on average, 4 KiB each in random:tiny's F16 cache).
TEST(Cli, BenchAtADepth) {
  const Result r = run("bench random:tiny -p 8 -n 4 -d 20 -r 1 -t 1 --roofline --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["tests"].size(), 2u) << r.output;
  EXPECT_EQ(j["tests"][0]["test"], "pp8 @ d20");
  EXPECT_EQ(j["tests"][1]["test"], "tg4 @ d20");
  EXPECT_EQ(j["kv_bytes_per_token"].get<double>(), 22.5 * 4096) << r.output;
  const Result bad = run("bench random:tiny -d -5");  // a bad flag: CLI11's message, naming it
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_LT(bad.exit_code, 128);
  EXPECT_NE(bad.output.find("--n-depth: Value -5 not in range"), std::string::npos) << bad.output;
}

// Several models take turns in one process: every model's tests, each with its repetitions, and each test's mean
// against the first model's; --roofline measures one model at a time.
TEST(Cli, BenchModelsTakeTurns) {
  const std::string gutenberg = kModels + "tiny-gutenberg";
  const Result r = run("bench random:tiny " + gutenberg + " -p 8 -n 4 -r 3 -t 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["models"].size(), 2u) << r.output;
  EXPECT_EQ(j["models"][0]["model"], "random:tiny");
  EXPECT_EQ(j["models"][1]["model"], gutenberg);
  for (const auto& m : j["models"]) {
    ASSERT_EQ(m["tests"].size(), 2u) << r.output;
    EXPECT_EQ(m["tests"][0]["test"], "pp8");
    EXPECT_EQ(m["tests"][1]["test"], "tg4");
    for (const auto& t : m["tests"]) {
      ASSERT_EQ(t["samples"].size(), 3u) << r.output;
      for (const auto& v : t["samples"]) EXPECT_GT(v.get<double>(), 0.0);
    }
  }
  // Both are 4-layer F16 models of 256 dimensions: 7 MiB of weights read a token.
  for (const auto& m : j["models"]) EXPECT_EQ(m["weight_bytes_per_token"].get<double>(), 7340544.0) << r.output;

  const Result text = run("bench random:tiny random:tiny -p 0 -n 4 -r 2 -t 1");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("| model | size | threads | test | t/s | weights GB/s | vs the first |"), std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("| random:tiny | 9.0 MiB | 1 | tg4 | "), std::string::npos) << text.output;
  EXPECT_NE(text.output.find(" | 1.000 |\n"), std::string::npos) << "the first model against itself: " << text.output;
  expect_clean_error("bench random:tiny random:tiny -n 4 -r 1 --roofline", "--roofline: measures one model");
  // A bad file among them stops the run with its name, before anything is timed.
  const std::string dir = testing::TempDir() + "/bench-turns";
  std::filesystem::create_directories(dir);
  lowbit::AtomicFile cut(dir + "/cut.gguf");  // a GGUF header and nothing after it
  cut.write("GGUF\x03\x00\x00\x00", 8);
  cut.write_zeros(3);
  cut.commit();
  expect_clean_error("bench random:tiny " + dir + "/cut.gguf -n 4 -r 1", "cut.gguf");
  expect_clean_error("bench random:tiny " + dir + "/missing.gguf -n 4 -r 1", "missing.gguf: no such file");
}

// LOWBIT_SIMD_TARGET pins the kernels to one target: a name this build and CPU do not run is a one-line error; the
// SSE4 pass (FMAs rounded in software) and the reference's (SSSE3) generate what the best pass does.
TEST(Cli, SimdTargetIsPinnedByName) {
  const std::string dir = testing::TempDir() + "/cli_simd";
  std::filesystem::create_directories(dir);
  const std::string model = dir + "/q4_k_m.gguf";
  ASSERT_EQ(run("quantize " + kModels + "tiny-gutenberg " + model + " Q4_K_M").exit_code, 0);
  const std::string generate = "run " + model + " -p 'The old man' -n 24 -t 2";
  const Result best = run(generate);
  ASSERT_EQ(best.exit_code, 0) << best.output;
  for (const char* target : {"SSE4", "SSSE3"}) {
    const Result pinned = run(generate, std::string("LOWBIT_SIMD_TARGET=") + target);
    EXPECT_EQ(pinned.exit_code, 0) << pinned.output;
    EXPECT_EQ(pinned.output, best.output) << target;
  }
  const Result bad = run("inspect random:tiny", "LOWBIT_SIMD_TARGET=AVX9");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("lowbit: error: LOWBIT_SIMD_TARGET: 'AVX9' is not a SIMD target"), std::string::npos)
      << bad.output;
  EXPECT_EQ(bad.output.find('\n'), bad.output.size() - 1) << bad.output;
}

// random:PRESET stands for a random-weight Llama of known shapes (speed measurements need no download).
TEST(Cli, RandomModelPresetsOpenLikeFiles) {
  Result r = run("inspect random:tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("layers 4  embd 256"), std::string::npos) << r.output;
  expect_clean_error("inspect random:huge", "unknown random model preset 'huge'");
}

}  // namespace
}  // namespace lowbit
