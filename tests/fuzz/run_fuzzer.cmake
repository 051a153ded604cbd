# Seeds a corpus with small real files and runs a libFuzzer binary for a fixed number of executions.
file(MAKE_DIRECTORY ${CORPUS})
if(KIND STREQUAL "gguf")
  file(GLOB seeds ${SRC}/../shared/data/tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf)
else()
  file(GLOB seeds ${SRC}/models/tiny-gutenberg/model.safetensors)
endif()
foreach(s ${seeds})
  # Only the first 64 KiB: headers are what the parsers read.
  get_filename_component(base ${s} NAME)
  execute_process(COMMAND head -c 65536 ${s} OUTPUT_FILE ${CORPUS}/${base})
endforeach()
execute_process(COMMAND ${BIN} -runs=20000 -max_len=65536 -seed=1 -rss_limit_mb=2048 ${CORPUS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzzer ${BIN} failed (${rc}):\n${err}")
endif()
string(REGEX MATCH "Done [0-9]+ runs" done "${err}")
message(STATUS "${done}")
