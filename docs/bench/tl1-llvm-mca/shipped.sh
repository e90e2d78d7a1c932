#!/usr/bin/env bash
# llvm-mca cycle estimates of the *shipped* AArch64 kernels (kernels/ggml-cpu/arch/arm/), N = 1 (generation):
#   i2s_neon  I2_S plain NEON, one column   (i2s-gemm-arm.c neon_rows, C = 1, via i2s_c1.c)   -march=armv8-a
#   i2s_dot   I2_S dotprod, one column      (i2s-gemm-arm.c dot_rows,  C = 1, via i2s_c1.c)   -march=armv8.2-a+dotprod
#   tl1_gemv  TL1 GEMV                      (tl1-gemm-arm.c bitnet_tl1_gemv_neon / gemv_tile)  -march=armv8-a
#   tl1_table TL1 table build               (tl1-gemm-arm.c bitnet_tl1_table_neon)             -march=armv8-a
# Each source is compiled to assembly with aarch64-linux-gnu-gcc -O2 and, if present, clang -O3; the
# steady-state inner loop is cut out with extract.py --cycle, and llvm-mca runs it 1000 times on the
# cortex-a53, cortex-a72, cortex-a76 and neoverse-n1 models (the dotprod loop only on the two cores that have
# dotprod, with -mattr=+dotprod). Work files go to shipped/, the table to shipped_summary.txt.
#
# Normalisation (weights one loop iteration handles, read from the source; extract.py checks the op count):
#   i2s_neon  one iteration of `for (; k + 128 <= K; k += 128, p += 32)` with C = 1: one row x 128 k
#             = 128 weights; 2 halves x 4 neon_mla x (smlal + smlal2) = 16 smlal/smlal2.
#   i2s_dot   the same loop in dot_rows: 128 weights; 2 halves x 4 dot_acc = 8 sdot.
#   tl1_gemv  one iteration of `for (n = (pe - p0) / 4; ...; wp += 64, tp += 128)` = 2 x SGN_STEP2 = 4 pairs
#             x 32 rows x 2 weights = 256 weights; 4 pairs x 4 tbl = 16 tbl.
#   tl1_table one iteration of `for (p = 0; p < P; p += BITNET_TL1_TABLE_STEP)` = 8 pairs = 16 activations;
#             8 TABLE_PAIR x (uzp1 + uzp2) = 16 uzp. Reported per 1024 activations, not weights.
# cycles per 1024 = Total Cycles / 1000 x 1024 / (weights or activations per iteration).
#
# Not in the loop figures: the I2_S int16 flush every 15 iterations (extract.py drops it as a detour), the per-row
# head/tail and addv, TL1 per-block widening (every 128 pairs) and the odd-pair tail, activation quantization.
#
# Usage: ./shipped.sh            (MCA=/path/to/llvm-mca to pick the llvm-mca; default: newest /usr/lib/llvm-*)
set -euo pipefail
cd "$(dirname "$0")"
KD="$(cd ../../../kernels && pwd)"
INC=(-I. -I"$KD" -I"$KD/ggml-cpu")
TL1_SRC="$KD/ggml-cpu/arch/arm/tl1-gemm-arm.c"
OUT=shipped
SUMMARY=shipped_summary.txt

if [[ -z "${MCA:-}" ]]; then
    MCA=$(ls /usr/lib/llvm-*/bin/llvm-mca 2>/dev/null | sort -V | tail -n 1 || true)
    MCA=${MCA:-llvm-mca}
fi
GCC=aarch64-linux-gnu-gcc
CORES=(cortex-a53 cortex-a72 cortex-a76 neoverse-n1)
COMPILERS=(gcc)
command -v clang >/dev/null && COMPILERS+=(clang)

mkdir -p "$OUT/mca"
# name  weights-per-iteration  function  source  march  signature-regex  signature-count
LOOPS=(
    "i2s_neon  128 i2s_neon_c1          i2s_c1.c  armv8-a               smlal2? 16"
    "i2s_dot   128 i2s_dot_c1           i2s_c1.c  armv8.2-a+dotprod     sdot    8"
    "tl1_gemv  256 bitnet_tl1_gemv_neon TL1       armv8-a               tbl     16"
    "tl1_table 16  bitnet_tl1_table_neon TL1      armv8-a               uzp[12] 16"
)

compile() {  # compiler source march out.s
    local src=$2
    [[ $src == TL1 ]] && src=$TL1_SRC
    case $1 in
        gcc) "$GCC" -O2 -march="$3" "${INC[@]}" -S "$src" -o "$4" ;;
        clang) clang --target=aarch64-linux-gnu -O3 -march="$3" "${INC[@]}" -S "$src" -o "$4" ;;
    esac
}

declare -A RES  # compiler.loop.core -> cycles per 1024
{
    echo "# shipped.sh: llvm-mca estimates of the shipped AArch64 kernels, N = 1, cycles per 1024 weights"
    echo "# (tl1_table: per 1024 activations). Iterations = 1000. See the header of shipped.sh for the normalisation."
    dirty=$(cd "$KD/.." && git status --porcelain -- kernels 2>/dev/null | grep -q . && echo ' (kernels/ modified)' || true)
    echo "# kernels/ at commit $(cd "$KD/.." && git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty"
    echo "# $("$MCA" --version | grep -i 'llvm version' | sed 's/^ *//') ($MCA)"
    echo "# gcc: $("$GCC" --version | head -n 1)"
    [[ " ${COMPILERS[*]} " == *" clang "* ]] && echo "# clang: $(clang --version | head -n 1)"
    echo
    echo "## per loop"
    for cc in "${COMPILERS[@]}"; do
        for spec in "${LOOPS[@]}"; do
            read -r name wpi fn src march sig nsig <<<"$spec"
            asm="$OUT/$name.$cc.s"
            loop="$OUT/loop_$name.$cc.s"
            compile "$cc" "$src" "$march" "$asm"
            ./extract.py --cycle "$asm" "$fn" "$loop" "$sig" "$nsig" >/dev/null
            for cpu in "${CORES[@]}"; do
                attr=()
                if [[ $name == i2s_dot ]]; then
                    case $cpu in cortex-a76 | neoverse-n1) attr=(-mattr=+dotprod) ;; *) continue ;; esac
                fi
                rep="$OUT/mca/$name.$cc.$cpu.txt"
                "$MCA" -mtriple=aarch64 -mcpu="$cpu" "${attr[@]}" -iterations=1000 "$loop" >"$rep" 2>&1
                cyc=$(awk '/^Total Cycles:/{print $3}' "$rep")
                rth=$(awk '/^Block RThroughput:/{print $3}' "$rep")
                ipc=$(awk '/^IPC:/{print $2}' "$rep")
                nins=$(awk '/^Instructions:/{print $2 / 1000}' "$rep")
                per=$(awk -v c="$cyc" -v w="$wpi" 'BEGIN{printf "%.0f", c / 1000 * 1024 / w}')
                RES[$cc.$name.$cpu]=$per
                printf '%-5s %-9s %-11s %3d w/it %3d ins/it  %6.2f cyc/it (RThroughput %5s, IPC %s)  => %5d cyc/1024\n' \
                    "$cc" "$name" "$cpu" "$wpi" "$nins" "$(awk -v c="$cyc" 'BEGIN{print c / 1000}')" "$rth" "$ipc" "$per"
            done
        done
    done
    for cc in "${COMPILERS[@]}"; do
        echo
        echo "## $cc: cycles per 1024 weights (TL1 table: per 1024 activations)"
        printf '%-12s %10s %13s %9s %10s\n' core "I2_S NEON" "I2_S dotprod" "TL1 GEMV" "TL1 table"
        for cpu in "${CORES[@]}"; do
            printf '%-12s %10s %13s %9s %10s\n' "$cpu" "${RES[$cc.i2s_neon.$cpu]}" "${RES[$cc.i2s_dot.$cpu]:-n/a}" \
                "${RES[$cc.tl1_gemv.$cpu]}" "${RES[$cc.tl1_table.$cpu]}"
        done
    done
} | tee "$SUMMARY"
