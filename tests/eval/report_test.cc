#include "eval/report.h"

#include <gtest/gtest.h>
#include <png.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

CompareReport sample_report() {
  CompareReport r;
  r.source = "models/tiny-gutenberg";
  r.eval_text = "wiki.test.raw";
  r.ctx = 256;
  r.chunks = 40;
  r.machine = "test machine, 2 threads";
  VariantResult src{"f32", "source", "F16", "a", 14.7e6, 32.0, 30e6, 900, 200, 558.47, 20.1, {}, {}, {}, {}};
  VariantResult q8{"q8_0", "gguf", "Q8_0", "b", 4.0e6, 8.7, 12e6, 1500, 400, 558.34, 20.0, 0.00043, 1e-5, 98.3, {}};
  VariantResult q4{"q4_0", "gguf", "Q4_0", "c", 2.4e6, 5.3, 10e6, 1700, 500, 558.51, 20.0, 0.0223, 1e-4, 89.4, {}};
  VariantResult q4km{"q4_k_m", "gguf", "Q4_K_M", "d", 2.5e6, 5.5, 10e6, 1600, 480, 564.2, 20.3, 0.0147, 1e-4, 90.6, {}};
  VariantResult q2{"q2_k", "gguf", "Q2_K", "e", 1.9e6, 4.2, 9e6, 1650, 520, 585.5, 21.0, 0.168, 1e-3, 71.8, {}};
  q4km.tasks["hellaswag"] = {100, 0.31, 0.046, 0.33, 0.047};
  r.variants = {src, q8, q4, q4km, q2};
  return r;
}

TEST(Report, SummaryAndParetoFrontByHand) {
  const ReportSummary s = summarize(sample_report());
  EXPECT_EQ(s.best_accuracy, "q8_0");
  EXPECT_EQ(s.best_size, "q2_k");
  EXPECT_EQ(s.best_speed, "q2_k");
  // q4_0 (5.3 bpw, 0.0223) is beaten by nothing smaller+better; q4_k_m (5.5, 0.0147) is not dominated either;
  // the source has no KLD and is not plotted.
  EXPECT_EQ(s.pareto, (std::vector<std::string>{"q8_0", "q4_0", "q4_k_m", "q2_k"}));
}

TEST(Report, MarkdownAndJsonRoundTrip) {
  const CompareReport r = sample_report();
  const std::string md = report_markdown(r);
  EXPECT_NE(md.find("| q4_k_m | gguf | 2.4 MiB | 5.50 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| +1.03 |"), std::string::npos) << md;  // 564.2 / 558.47 - 1
  EXPECT_NE(md.find("33.0 ± 4.7"), std::string::npos);
  const CompareReport back = parse_report_json(report_json(r), "report.json");
  ASSERT_EQ(back.variants.size(), r.variants.size());
  EXPECT_EQ(back.variants[3].name, "q4_k_m");
  EXPECT_DOUBLE_EQ(*back.variants[3].kld_mean, 0.0147);
  EXPECT_FALSE(back.variants[0].kld_mean.has_value());
  EXPECT_DOUBLE_EQ(back.variants[3].tasks.at("hellaswag").acc_norm, 0.33);
  EXPECT_THROW(parse_report_json("{\"variants\": 3}", "bad.json"), Error);
}

// A lossless variant's KLD comes out a hair below zero (the base logits are stored in 16 bits); it reads 0.00000,
// not -0.00000, while a real negative figure keeps its sign.
TEST(Report, KldThatRoundsToZeroHasNoSign) {
  CompareReport r = sample_report();
  r.variants[1].kld_mean = -3e-9;
  r.variants[2].kld_mean = -0.00002;
  const std::string md = report_markdown(r);
  EXPECT_NE(md.find("| 0.00000 | 98.30 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("-0.00000"), std::string::npos) << md;
  EXPECT_NE(md.find("| -0.00002 | 89.40 |"), std::string::npos) << md;
}

// Fraction of pixels that are not (near) white in a PNG.
double ink_fraction(const std::string& png_path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png_path.c_str())) return -1;
  image.format = PNG_FORMAT_GRAY;
  std::vector<png_byte> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return -1;
  size_t ink = 0;
  for (png_byte p : pixels) ink += p < 200;
  return static_cast<double>(ink) / static_cast<double>(pixels.size());
}

TEST(Report, HtmlRendersItsPlotsInHeadlessChromium) {
  const std::string chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) GTEST_SKIP() << "chromium not installed (make test installs it)";
  const std::string dir = testing::TempDir() + "/lowbit_report_test";
  write_report(dir, sample_report());
  const std::string html = read_text_file(dir + "/report.html");
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, nothing to load
  const std::string png = dir + "/shot.png";
  std::remove(png.c_str());
  const std::string cmd = chromium + " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                          "--disable-background-networking --disable-component-update --disable-sync "
                          "--user-data-dir=" + dir + "/profile --window-size=1400,1400 --screenshot=" + png +
                          " file://" + dir + "/report.html > " + dir + "/chromium.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_text_file(dir + "/chromium.log");
  const double ink = ink_fraction(png);
  EXPECT_GT(ink, 0.01) << "screenshot is blank";
  // The same page with its figures removed has clearly less ink: the plots are what is drawn.
  std::string bare = html;
  for (size_t a; (a = bare.find("<figure")) != std::string::npos;) bare.erase(a, bare.find("</figure>", a) + 9 - a);
  write_file_atomic(dir + "/bare.html", bare);
  const std::string png2 = dir + "/bare.png";
  const std::string cmd2 = chromium + " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                           "--disable-background-networking --disable-component-update --disable-sync "
                           "--user-data-dir=" + dir + "/profile --window-size=1400,1400 --screenshot=" + png2 +
                           " file://" + dir + "/bare.html > " + dir + "/chromium2.log 2>&1";
  ASSERT_EQ(std::system(cmd2.c_str()), 0);
  EXPECT_GT(ink, ink_fraction(png2) + 0.005);
}

}  // namespace
}  // namespace lowbit
