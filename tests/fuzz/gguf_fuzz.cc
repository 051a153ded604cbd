// libFuzzer target: any bytes either parse as a GGUF file (and then every tensor view lies inside the input)
// or raise lowbit::Error, nothing else.
#include <cstddef>
#include <cstdint>

#include "io/gguf.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const lowbit::GgufFile g = lowbit::parse_gguf({data, size}, "fuzz.gguf");
    for (const auto& t : g.tensors) {
      if (g.data_offset + t.offset + t.info.n_bytes() > size) __builtin_trap();
    }
    for (const auto& [key, value] : g.metadata.items()) (void)value.to_display_string();
  } catch (const lowbit::Error&) {
  }
  return 0;
}
