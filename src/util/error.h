// One error type for everything lowbit refuses to do. The message is a single line that names the file (or
// flag) and what is wrong with it; the CLI prints it and exits non-zero.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error("<where>: <formatted message>"). `where` is a path, a tensor name or a flag.
template <typename... Args>
[[noreturn]] void fail(std::string_view where, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format("{}: {}", where, fmt::format(format, std::forward<Args>(args)...)));
}

// Checks a condition on untrusted input; on failure throws Error naming `where`.
template <typename... Args>
void check(bool ok, std::string_view where, fmt::format_string<Args...> format, Args&&... args) {
  if (!ok) fail(where, format, std::forward<Args>(args)...);
}

}  // namespace lowbit
