#!/bin/sh
# builds and runs the bit-exactness test under qemu: no-dotprod on cortex-a53, dotprod on -cpu max
set -e
cd "$(dirname "$0")"
KD="$(cd ../../../kernels && pwd)"
SRC="test_tl1.c tl1.c $KD/ggml-cpu/generic/i2s-gemm.c $KD/ggml-cpu/arch/arm/i2s-gemm-arm.c"
INC="-I. -I$KD -I$KD/ggml-cpu"
aarch64-linux-gnu-gcc -O3 -march=armv8-a $INC $SRC -o test_a53
aarch64-linux-gnu-gcc -O3 -march=armv8.2-a+dotprod $INC $SRC -o test_dot
clang --target=aarch64-linux-gnu -O3 -march=armv8-a $INC $SRC -o test_a53_clang
echo "gcc  -march=armv8-a, qemu -cpu cortex-a53:";        qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu ./test_a53
echo "clang -march=armv8-a, qemu -cpu cortex-a53:";       qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu ./test_a53_clang
echo "gcc  -march=armv8.2-a+dotprod, qemu -cpu max:";     qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu ./test_dot
