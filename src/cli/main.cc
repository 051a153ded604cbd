// lowbit: git-style entry point. Every subcommand lives in its own cmd_*.cc; errors surface here as one line.
#include <malloc.h>

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cli/command.h"
#include "ops/simd_matmul.h"
#include "util/error.h"

namespace lowbit::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

Command::Command(std::string name, std::string description, Setup setup) {
  command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
}

}  // namespace lowbit::cli

int main(int argc, char** argv) {
  using namespace lowbit::cli;
  // A prompt batch allocates and frees blocks of megabytes per call. With glibc's defaults the freed top of the heap
  // went back to the kernel and was faulted in, zeroed, on the next call: 15 % of an F16 prompt's time in
  // clear_page, prompts at half speed with two threads. The engine now keeps its largest ones (the activations,
  // the layer's intermediates); the rest still gain from these thresholds (Q4_K_M pp64 -t 2: 257-264 t/s without,
  // 273-276 with). Blocks up to 32 MiB (glibc's largest mmap threshold) come from the heap, which keeps up to
  // 64 MiB free; larger ones (tensors) are still mapped and returned on free, so a streaming run does not hold them.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  CLI::App app{"lowbit: quantize large language models and measure what was lost"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lowbit 0.1.0");
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, Run>> runs;
  for (auto& entry : registry) {
    CLI::App* sub = app.add_subcommand(entry.name, entry.description);
    runs.emplace_back(sub, entry.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints help, or the bad flag in one line, with CLI11's exit code
  }
  try {
    // The kernels of one SIMD target, as a CPU with no more would run them (ops/simd_matmul.h).
    if (const char* target = std::getenv("LOWBIT_SIMD_TARGET")) lowbit::pin_simd_target(target, "LOWBIT_SIMD_TARGET");
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
  } catch (const lowbit::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "lowbit: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "lowbit: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "lowbit: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
