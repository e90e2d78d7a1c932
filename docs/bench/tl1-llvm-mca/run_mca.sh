#!/bin/sh
# llvm-mca on every extracted loop (gen_asm.sh) for the four cores. Prints cycles per loop iteration and
# the normalisation to cycles per 1024 weights (per 1024 activations for the LUT build).
cd "$(dirname "$0")"
MCA=${MCA:-/usr/lib/llvm-22/bin/llvm-mca}
mkdir -p mca
run() {  # loop-name  weights-per-iteration  cpu  [attr]
  $MCA -mtriple=aarch64 -mcpu=$3 $4 -iterations=1000 loop_$1.s > mca/$1.$3.txt 2>&1 || { echo "$1 $3 FAILED"; return; }
  cyc=$(awk '/^Total Cycles:/{print $3}' mca/$1.$3.txt)
  printf '%-18s %-12s %2d w/it  %6.2f cyc/it  IPC %s  => %6.1f cyc/1024\n' $1 $3 $2 $(echo "$cyc/1000" | bc -l) \
    $(awk '/^IPC:/{print $2}' mca/$1.$3.txt) $(echo "$cyc/1000*1024/$2" | bc -l)
}
for cpu in cortex-a53 cortex-a72 cortex-a76 neoverse-n1; do
  run i2s_neon 128 $cpu
  case $cpu in cortex-a76|neoverse-n1) run i2s_dot 128 $cpu -mattr=+dotprod;; esac
  run tl1_zip 64 $cpu; run tl1_sgn 64 $cpu; run tl1_sgn2 128 $cpu
  run tl1_lut 16 $cpu
done
for l in i2s_neon_a53tune:128 tl1_sgn_a53tune:64 tl1_sgn2_a53tune:128; do run ${l%:*} ${l#*:} cortex-a53; done
# dotprod loop on the non-dotprod cores' models, for reference only (they cannot run it)
run i2s_dot 128 cortex-a72 -mattr=+dotprod
