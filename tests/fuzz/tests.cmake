# libFuzzer targets for the file parsers, built with clang (-fsanitize=fuzzer,address,undefined) apart from the
# g++ build, and run by CTest for a fixed number of executions from a seed corpus of real files.
find_program(LOWBIT_CLANGXX NAMES clang++ clang++-14)
if(NOT LOWBIT_CLANGXX)
  message(STATUS "clang++ not found: fuzz tests skipped")
  return()
endif()

# The parsers depend on the type table, which pulls in the quantizers (and their Highway kernels): build util,
# core, quant and io.
file(GLOB LOWBIT_FUZZ_LIB_SOURCES CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/src/util/*.cc ${CMAKE_SOURCE_DIR}/src/core/*.cc ${CMAKE_SOURCE_DIR}/src/quant/*.cc
     ${CMAKE_SOURCE_DIR}/src/io/gguf.cc ${CMAKE_SOURCE_DIR}/src/io/safetensors.cc)
get_target_property(LOWBIT_FMT_INCLUDES fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
set(LOWBIT_FUZZ_FLAGS -std=c++20 -O1 -g -ffp-contract=off -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -I${CMAKE_SOURCE_DIR}/src)

foreach(name gguf safetensors)
  set(bin ${CMAKE_BINARY_DIR}/fuzz/${name}_fuzz)
  add_custom_command(
    OUTPUT ${bin}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/fuzz
    COMMAND ${LOWBIT_CLANGXX} ${LOWBIT_FUZZ_FLAGS} ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}_fuzz.cc
            ${LOWBIT_FUZZ_LIB_SOURCES} -lfmt -lhwy -o ${bin}
    DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}_fuzz.cc ${LOWBIT_FUZZ_LIB_SOURCES}
    COMMENT "Building libFuzzer target ${name}_fuzz with clang"
    VERBATIM)
  add_custom_target(${name}_fuzz ALL DEPENDS ${bin})
  set(corpus ${CMAKE_BINARY_DIR}/fuzz/${name}_corpus)
  add_test(NAME fuzz.${name}
           COMMAND ${CMAKE_COMMAND} -DBIN=${bin} -DCORPUS=${corpus} -DKIND=${name} -DSRC=${CMAKE_SOURCE_DIR}
                   -P ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzzer.cmake)
  set_tests_properties(fuzz.${name} PROPERTIES TIMEOUT 300)
endforeach()
