// libFuzzer target: any bytes either parse as a safetensors file or raise lowbit::Error, nothing else.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lowbit::parse_safetensors({data, size}, "fuzz.safetensors");
  } catch (const lowbit::Error&) {
  }
  return 0;
}
