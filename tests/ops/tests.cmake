# Checks on the lowbit binary's instructions; objdump comes with binutils.
find_program(LOWBIT_OBJDUMP objdump)
if(LOWBIT_OBJDUMP)
  # VEX-encoded VNNI (AVX-VNNI) only in the AVX2 kernels built for it (see vex_vnni_confined.sh).
  add_test(NAME ops.vex_vnni_confined
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/ops/vex_vnni_confined.sh ${LOWBIT_OBJDUMP} $<TARGET_FILE:lowbit>)
  # GFNI only in the kernels of the passes that check the CPU for it (see gfni_confined.sh).
  add_test(NAME ops.gfni_confined COMMAND sh ${CMAKE_SOURCE_DIR}/tests/ops/gfni_confined.sh ${LOWBIT_OBJDUMP} $<TARGET_FILE:lowbit>)
  # AVX512-BF16 instructions only in the tile that checks the CPU for them (see bf16_confined.sh).
  add_test(NAME ops.bf16_confined COMMAND sh ${CMAKE_SOURCE_DIR}/tests/ops/bf16_confined.sh ${LOWBIT_OBJDUMP} $<TARGET_FILE:lowbit>)
  # Every one-token tile prefetches its stream ahead, on every target (see generation_prefetches.sh).
  add_test(NAME ops.generation_prefetches
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/ops/generation_prefetches.sh ${LOWBIT_OBJDUMP} $<TARGET_FILE:lowbit>)
  # The tiles' per-block helpers are inlined (see block_helpers_inlined.sh).
  add_test(NAME ops.block_helpers_inlined
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/ops/block_helpers_inlined.sh ${LOWBIT_OBJDUMP} $<TARGET_FILE:lowbit>)
  # Attention's tiles keep their sums in registers (see attention_tiles_in_registers.sh).
  add_test(NAME ops.attention_tiles_in_registers
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/ops/attention_tiles_in_registers.sh ${LOWBIT_OBJDUMP} $<TARGET_FILE:lowbit>)
endif()
