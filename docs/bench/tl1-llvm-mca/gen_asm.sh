#!/bin/sh
# asm of the N=1 loops: project flags (-O3 -march=armv8-a / armv8.2-a+dotprod), plus an a53-tuned build
cd "$(dirname "$0")"
KD="$(cd ../../../kernels && pwd)"; INC="-I. -I$KD -I$KD/ggml-cpu"; CC="clang --target=aarch64-linux-gnu -O3"
$CC -march=armv8-a                  $INC -S i2s_c1.c -o i2s_neon.s
$CC -march=armv8.2-a+dotprod        $INC -S i2s_c1.c -o i2s_dot.s
$CC -march=armv8-a                  $INC -S tl1.c    -o tl1.s
$CC -march=armv8-a -mtune=cortex-a53 $INC -S i2s_c1.c -o i2s_neon_a53tune.s
$CC -march=armv8-a -mtune=cortex-a53 $INC -S tl1.c    -o tl1_a53tune.s
./extract.py i2s_neon.s i2s_neon_c1 loop_i2s_neon.s
./extract.py i2s_dot.s  i2s_dot_c1  loop_i2s_dot.s
for f in zip sgn sgn2; do ./extract.py tl1.s tl1_gemv_$f loop_tl1_$f.s; done
./extract.py tl1.s tl1_build_lut_neon loop_tl1_lut.s
./extract.py i2s_neon_a53tune.s i2s_neon_c1 loop_i2s_neon_a53tune.s
for f in sgn sgn2; do ./extract.py tl1_a53tune.s tl1_gemv_$f loop_tl1_${f}_a53tune.s; done
