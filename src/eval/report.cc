#include "eval/report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "eval/planner.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace lowbit {
namespace {

const VariantResult* source_of(const CompareReport& r) {
  for (const auto& v : r.variants)
    if (v.format == "source") return &v;
  return nullptr;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

struct Point {
  double x, y;
  std::string label;
};

// "Nice" axis ticks: 1, 2 or 5 times a power of ten, about five of them.
std::vector<double> linear_ticks(double lo, double hi) {
  const double span = hi - lo > 0 ? hi - lo : 1.0;
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag >= 5 ? 5 * mag : raw / mag >= 2 ? 2 * mag : mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

std::string tick_label(double v) {
  if (v != 0 && (std::fabs(v) < 0.01 || std::fabs(v) >= 1e5)) return fmt::format("{:.0e}", v);
  return fmt::format("{:.6g}", v);
}

// A scatter plot as inline SVG: labelled points, optional connecting line (a Pareto front), log or linear y.
std::string svg_scatter(const std::string& title, const std::string& x_label, const std::string& y_label,
                        const std::vector<Point>& points, bool log_y, const std::vector<Point>& line = {}) {
  const double W = 640, H = 380, L = 70, R = 20, T = 36, B = 50;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">"
      "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
      "<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>",
      W, H, W, H, W / 2, html_escape(title));
  if (points.empty()) return s + "<text x=\"320\" y=\"190\" text-anchor=\"middle\">no data</text></svg>";
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& p : points) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    const double y = log_y ? std::log10(p.y) : p.y;
    y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  const double xpad = (x1 - x0) * 0.08 + 1e-9, ypad = (y1 - y0) * 0.1 + (log_y ? 0.1 : 1e-9);
  x0 -= xpad, x1 += xpad, y0 -= ypad, y1 += ypad;
  if (!log_y && y0 > 0 && y0 < (y1 - y0)) y0 = 0;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - ((log_y ? std::log10(y) : y) - y0) / (y1 - y0) * (H - T - B); };
  s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>", L, H - B, W - R, H - B);
  s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>", L, T, L, H - B);
  for (double t : linear_ticks(x0, x1))
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>"
                     "<text x=\"{0:.1f}\" y=\"{3}\" font-size=\"11\" text-anchor=\"middle\">{4}</text>",
                     px(t), T, H - B, H - B + 16, tick_label(t));
  std::vector<double> yt;
  if (log_y) {
    for (double e = std::ceil(y0); e <= y1; e += 1) yt.push_back(std::pow(10.0, e));
  } else {
    yt = linear_ticks(y0, y1);
  }
  for (double t : yt)
    s += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
                     "<text x=\"{3}\" y=\"{4:.1f}\" font-size=\"11\" text-anchor=\"end\">{5}</text>",
                     L, py(t), W - R, L - 6, py(t) + 4, tick_label(t));
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>", (L + W - R) / 2, H - 12,
                   html_escape(x_label));
  s += fmt::format("<text x=\"16\" y=\"{0}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">{1}</text>",
                   (T + H - B) / 2, html_escape(y_label + (log_y ? " (log scale)" : "")));
  if (line.size() > 1) {
    std::string pts;
    for (const auto& p : line) pts += fmt::format("{:.1f},{:.1f} ", px(p.x), py(p.y));
    s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>", pts);
  }
  for (const auto& p : points)
    s += fmt::format("<circle cx=\"{0:.1f}\" cy=\"{1:.1f}\" r=\"5\" fill=\"#1f77b4\"><title>{2}</title></circle>"
                     "<text x=\"{3:.1f}\" y=\"{4:.1f}\" font-size=\"11\">{2}</text>",
                     px(p.x), py(p.y), html_escape(p.label), px(p.x) + 7, py(p.y) - 6);
  return s + "</svg>";
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t a = 0, b; (b = text.find('\n', a)) != std::string::npos; a = b + 1) lines.push_back(text.substr(a, b - a));
  return lines;
}

// "-" for no value; a value that rounds to zero without its sign (a KLD of -1e-9, from the base logits' 16-bit
// storage, as 0.00000 rather than -0.00000).
std::string fmt_opt(const std::optional<double>& v, const char* spec) {
  if (!v) return "-";
  std::string s = fmt::format(fmt::runtime(spec), *v);
  if (s.starts_with('-') && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

}  // namespace

ReportSummary summarize(const CompareReport& r) {
  ReportSummary s;
  const VariantResult *acc = nullptr, *size = nullptr, *speed = nullptr;
  for (const auto& v : r.variants) {
    if (v.format != "source" && v.kld_mean && (!acc || *v.kld_mean < *acc->kld_mean)) acc = &v;
    if (!size || v.file_bytes < size->file_bytes) size = &v;
    if (!speed || v.tg_tokens_per_s > speed->tg_tokens_per_s) speed = &v;
  }
  if (acc) s.best_accuracy = acc->name;
  if (size) s.best_size = size->name;
  if (speed) s.best_speed = speed->name;
  // Pareto front: no other variant is both smaller (bits per weight) and more accurate (lower KLD).
  for (const auto& v : r.variants) {
    if (!v.kld_mean) continue;
    bool dominated = false;
    for (const auto& w : r.variants)
      if (&w != &v && w.kld_mean && w.bits_per_weight <= v.bits_per_weight && *w.kld_mean <= *v.kld_mean &&
          (w.bits_per_weight < v.bits_per_weight || *w.kld_mean < *v.kld_mean))
        dominated = true;
    if (!dominated) s.pareto.push_back(v.name);
  }
  return s;
}

std::string report_markdown(const CompareReport& r) {
  const VariantResult* src = source_of(r);
  std::vector<std::string> task_names;
  for (const auto& v : r.variants)
    for (const auto& [name, t] : v.tasks)
      if (std::find(task_names.begin(), task_names.end(), name) == task_names.end()) task_names.push_back(name);
  std::string out = fmt::format("# lowbit compare: {}\n\nPerplexity text `{}`, ctx {}, {} chunks. Machine: {}.\n\n",
                                r.source, r.eval_text, r.ctx, r.chunks, r.machine);
  out += "| variant | format | size | bpw | memory | pp t/s | tg t/s | PPL | ΔPPL % | KLD | same top % |";
  for (const auto& t : task_names) out += fmt::format(" {} acc_norm |", t);
  out += "\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
  for (size_t i = 0; i < task_names.size(); ++i) out += "---:|";
  out += "\n";
  for (const auto& v : r.variants) {
    const std::string dppl = src && src->ppl > 0 && v.format != "source"
                                 ? fmt::format("{:+.2f}", 100.0 * (v.ppl / src->ppl - 1.0)) : "-";
    out += fmt::format("| {} | {} | {} | {:.2f} | {} | {:.1f} | {:.1f} | {:.4f} ± {:.4f} | {} | {} | {} |", v.name,
                       v.format, format_bytes(v.file_bytes), v.bits_per_weight, format_bytes(v.peak_rss_bytes),
                       v.pp_tokens_per_s, v.tg_tokens_per_s, v.ppl, v.ppl_stderr, dppl, fmt_opt(v.kld_mean, "{:.5f}"),
                       fmt_opt(v.top1_percent, "{:.2f}"));
    for (const auto& t : task_names) {
      auto it = v.tasks.find(t);
      out += it == v.tasks.end() ? " - |"
                                 : fmt::format(" {:.1f} ± {:.1f} |", 100 * it->second.acc_norm, 100 * it->second.acc_norm_stderr);
    }
    out += "\n";
  }
  const ReportSummary s = summarize(r);
  out += fmt::format("\nBest for accuracy (lowest KLD): **{}**. Smallest: **{}**. Fastest generation: **{}**.\n",
                     s.best_accuracy.empty() ? "-" : s.best_accuracy, s.best_size, s.best_speed);
  out += "Pareto front (KLD vs bits per weight): " + fmt::format("{}", fmt::join(s.pareto, ", ")) + ".\n";
  return out;
}

std::string report_json(const CompareReport& r) {
  nlohmann::ordered_json j;
  j["source"] = r.source;
  j["eval_text"] = r.eval_text;
  j["ctx"] = r.ctx;
  j["chunks"] = r.chunks;
  j["machine"] = r.machine;
  j["variants"] = nlohmann::ordered_json::array();
  for (const auto& v : r.variants) {
    nlohmann::ordered_json o;
    o["name"] = v.name;
    o["format"] = v.format;
    o["plan_format"] = v.plan_format;
    o["path"] = v.path;
    o["file_bytes"] = v.file_bytes;
    o["bits_per_weight"] = v.bits_per_weight;
    o["peak_rss_bytes"] = v.peak_rss_bytes;
    o["pp_tokens_per_s"] = v.pp_tokens_per_s;
    o["tg_tokens_per_s"] = v.tg_tokens_per_s;
    o["ppl"] = v.ppl;
    o["ppl_stderr"] = v.ppl_stderr;
    o["kld"] = v.kld_mean ? nlohmann::ordered_json(*v.kld_mean) : nlohmann::ordered_json();
    o["kld_stderr"] = v.kld_stderr ? nlohmann::ordered_json(*v.kld_stderr) : nlohmann::ordered_json();
    o["top1_percent"] = v.top1_percent ? nlohmann::ordered_json(*v.top1_percent) : nlohmann::ordered_json();
    o["tasks"] = nlohmann::ordered_json::object();
    for (const auto& [name, t] : v.tasks)
      o["tasks"][name] = {{"n", t.n}, {"acc", t.acc}, {"acc_stderr", t.acc_stderr}, {"acc_norm", t.acc_norm},
                          {"acc_norm_stderr", t.acc_norm_stderr}};
    j["variants"].push_back(o);
  }
  const ReportSummary s = summarize(r);
  j["summary"] = {{"best_accuracy", s.best_accuracy}, {"best_size", s.best_size}, {"best_speed", s.best_speed},
                  {"pareto", s.pareto}};
  return j.dump(2) + "\n";
}

CompareReport parse_report_json(const std::string& text, const std::string& where) {
  CompareReport r;
  try {
    const auto j = nlohmann::json::parse(text);
    r.source = j.at("source").get<std::string>();
    r.eval_text = j.value("eval_text", "");
    r.ctx = j.value("ctx", int64_t{0});
    r.chunks = j.value("chunks", int64_t{0});
    r.machine = j.value("machine", "");
    for (const auto& o : j.at("variants")) {
      VariantResult v;
      v.name = o.at("name").get<std::string>();
      v.format = o.at("format").get<std::string>();
      v.plan_format = o.value("plan_format", "");
      v.path = o.value("path", "");
      v.file_bytes = o.value("file_bytes", 0.0);
      v.bits_per_weight = o.value("bits_per_weight", 0.0);
      v.peak_rss_bytes = o.value("peak_rss_bytes", 0.0);
      v.pp_tokens_per_s = o.value("pp_tokens_per_s", 0.0);
      v.tg_tokens_per_s = o.value("tg_tokens_per_s", 0.0);
      v.ppl = o.value("ppl", 0.0);
      v.ppl_stderr = o.value("ppl_stderr", 0.0);
      if (o.contains("kld") && o["kld"].is_number()) v.kld_mean = o["kld"].get<double>();
      if (o.contains("kld_stderr") && o["kld_stderr"].is_number()) v.kld_stderr = o["kld_stderr"].get<double>();
      if (o.contains("top1_percent") && o["top1_percent"].is_number()) v.top1_percent = o["top1_percent"].get<double>();
      if (o.contains("tasks"))
        for (const auto& [name, t] : o["tasks"].items())
          v.tasks[name] = {t.at("n").get<int>(), t.at("acc").get<double>(), t.at("acc_stderr").get<double>(),
                           t.at("acc_norm").get<double>(), t.at("acc_norm_stderr").get<double>()};
      r.variants.push_back(std::move(v));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(where, "not a lowbit compare report: {}", e.what());
  }
  return r;
}

std::string report_html(const CompareReport& r) {
  std::vector<Point> kld, ppl, speed;
  const double tiny = 1e-6;  // the source has KLD 0, which a log axis cannot show: plot it at 1e-6
  for (const auto& v : r.variants) {
    if (v.kld_mean) kld.push_back({v.bits_per_weight, std::max(*v.kld_mean, tiny), v.name});
    ppl.push_back({v.file_bytes / (1024.0 * 1024.0), v.ppl, v.name});
    speed.push_back({v.file_bytes / (1024.0 * 1024.0), v.tg_tokens_per_s, v.name});
  }
  const ReportSummary s = summarize(r);
  std::vector<Point> front;
  for (const auto& p : kld)
    if (std::find(s.pareto.begin(), s.pareto.end(), p.label) != s.pareto.end()) front.push_back(p);
  std::sort(front.begin(), front.end(), [](const Point& a, const Point& b) { return a.x < b.x; });

  // The markdown table, rendered as an HTML table without any external library.
  std::string table = "<table>";
  bool header = true;
  for (const auto& line : split_lines(report_markdown(r))) {
    if (line.rfind("|", 0) != 0 || line.rfind("|---", 0) == 0) continue;
    table += "<tr>";
    for (size_t a = 1, b; (b = line.find('|', a)) != std::string::npos; a = b + 1)
      table += (header ? "<th>" : "<td>") + html_escape(line.substr(a, b - a)) + (header ? "</th>" : "</td>");
    table += "</tr>";
    header = false;
  }
  table += "</table>";

  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lowbit compare: {0}</title>"
      "<style>body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:12px 0}}"
      "td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}"
      "figure{{display:inline-block;margin:8px}}</style></head><body>"
      "<h1>lowbit compare</h1><p>Source <code>{0}</code>; perplexity on <code>{1}</code>, ctx {2}, {3} chunks; {4}.</p>"
      "{5}<p>Best for accuracy: <b>{6}</b>. Smallest: <b>{7}</b>. Fastest: <b>{8}</b>.</p>"
      "<figure id=\"kld\">{9}</figure><figure id=\"ppl\">{10}</figure><figure id=\"speed\">{11}</figure>"
      "</body></html>\n",
      html_escape(r.source), html_escape(r.eval_text), r.ctx, r.chunks, html_escape(r.machine), table,
      html_escape(s.best_accuracy), html_escape(s.best_size), html_escape(s.best_speed),
      svg_scatter("KLD vs bits per weight (dashed: Pareto front)", "bits per weight", "mean KLD vs source", kld, true,
                  front),
      svg_scatter("Perplexity vs file size", "file size (MiB)", "perplexity", ppl, false),
      svg_scatter("Generation speed vs file size", "file size (MiB)", "tokens/s", speed, false));
}

void write_report(const std::string& dir, const CompareReport& report) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec, dir, "cannot create report folder: {}", ec.message());
  write_file_atomic(dir + "/report.md", report_markdown(report));
  write_file_atomic(dir + "/report.json", report_json(report));
  write_file_atomic(dir + "/report.html", report_html(report));
}

}  // namespace lowbit
