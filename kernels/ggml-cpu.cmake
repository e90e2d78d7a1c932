# Included by the patched ggml/src/ggml-cpu/CMakeLists.txt inside
# ggml_add_cpu_backend_variant_impl(), before the sources are attached, so the kernels get the
# same ARCH_FLAGS as ggml-cpu's own arch/ files.
set(BITNET_CPU_DIR ${GGML_BITNET_KERNELS_DIR}/ggml-cpu)
file(GLOB BITNET_CPU_SOURCES CONFIGURE_DEPENDS ${BITNET_CPU_DIR}/*.c ${BITNET_CPU_DIR}/*.h ${BITNET_CPU_DIR}/generic/*.c)
list(APPEND GGML_CPU_SOURCES ${BITNET_CPU_SOURCES})
if (GGML_SYSTEM_ARCH STREQUAL "x86")
    file(GLOB BITNET_ARCH_SOURCES CONFIGURE_DEPENDS ${BITNET_CPU_DIR}/arch/x86/*.c)
elseif (GGML_SYSTEM_ARCH STREQUAL "ARM")
    file(GLOB BITNET_ARCH_SOURCES CONFIGURE_DEPENDS ${BITNET_CPU_DIR}/arch/arm/*.c)
endif()
list(APPEND GGML_CPU_SOURCES ${BITNET_ARCH_SOURCES})
# the generator's header (tables, this model's shapes, tuned parameters): bitnet_gguf/setup/kernel_gen.py
target_include_directories(${GGML_CPU_NAME} PRIVATE ${GGML_BITNET_KERNELS_DIR} ${BITNET_CPU_DIR} ${GGML_BITNET_GENERATED_DIR})
