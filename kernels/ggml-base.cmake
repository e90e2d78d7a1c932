# Included by the patched ggml/src/CMakeLists.txt after ggml-base is defined:
# the I2_S, TL1 and TL2 format functions (quantize, dequantize, validate) belong to ggml-base.
target_sources(ggml-base PRIVATE
    ${GGML_BITNET_KERNELS_DIR}/i2s-quants.c ${GGML_BITNET_KERNELS_DIR}/i2s-quants.h
    ${GGML_BITNET_KERNELS_DIR}/tl1-quants.c ${GGML_BITNET_KERNELS_DIR}/tl1-quants.h
    ${GGML_BITNET_KERNELS_DIR}/tl2-quants.c ${GGML_BITNET_KERNELS_DIR}/tl2-quants.h)
target_include_directories(ggml-base PRIVATE ${GGML_BITNET_KERNELS_DIR})
