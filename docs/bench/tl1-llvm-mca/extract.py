#!/usr/bin/env python3
"""Cut the steady-state inner loop out of a clang -S file and wrap it in LLVM-MCA-BEGIN/END markers.

usage: extract.py FILE.s FUNCTION OUT.s [BLOCKS...]
The loop is the first 'Inner Loop Header' of FUNCTION, up to and including its first conditional branch;
if that branch targets another block (a latch), the block is appended; extra basic-block labels are
appended in the order given.

usage: extract.py --cycle FILE.s FUNCTION OUT.s MNEMONIC_REGEX COUNT
For gcc or clang output (shipped.sh): the basic blocks of FUNCTION form a control-flow graph; every backward
branch (to a label at or before it) closes a loop made of the blocks laid out between its target and itself.
For each such loop the shortest cycle through its first block (in instructions, staying inside the loop) is
the steady-state path: rare blocks such as the I2_S int16 flush are detours and drop out. The cycle kept is
the shortest one with exactly COUNT instructions whose mnemonic matches MNEMONIC_REGEX (e.g. 16 'tbl' in
the TL1 GEMV loop), so an unexpected unroll or a wrong pick fails instead of giving a wrong normalisation.
"""

from __future__ import annotations

import re
import sys

# b, b.cond (clang), bcond (gcc: bne, bgt, ...), cbz/cbnz/tbz/tbnz
BRANCH = re.compile(r"(b(\.\w+)?|b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)|[ct]bn?z)\s")


def block_after(body: list[str], i0: int) -> list[str]:
    """Instructions of the basic block that starts after line i0, up to its branch or the next label."""
    out: list[str] = []
    for line in body[i0 + 1:]:
        s = line.split("//")[0].strip()
        if not s or s.startswith("."):
            continue
        if s.endswith(":"):
            break
        out.append("\t" + s)
        if BRANCH.match(s):
            break
    return out


def label_line(body: list[str], label: str) -> int:
    return next(i for i, line in enumerate(body) if line.startswith(label + ":"))


def main(src: str, fn: str, out: str, extra: list[str]) -> None:
    with open(src) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(fn + ":"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(".Lfunc_end"))
    body = lines[start:end]
    header = next(i for i, line in enumerate(body) if "Inner Loop Header" in line)
    header_label = next(body[j] for j in range(header, -1, -1) if body[j].startswith(".LBB")).split(":")[0]
    loop = block_after(body, header)
    target = loop[-1].split()[-1]
    if target != header_label and not extra:  # the common path branches to a separate latch (I2_S neon: flush skipped)
        extra = [target]
    for label in extra:
        loop += block_after(body, label_line(body, label))
    with open(out, "w") as f:
        f.write(f"# LLVM-MCA-BEGIN {fn}\n" + "\n".join(loop) + "\n# LLVM-MCA-END\n")
    print(out, len(loop), "instructions")


def function_body(lines: list[str], fn: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(fn + ":"))
    end_re = re.compile(rf"^(\s*\.size\s+{re.escape(fn)},|\.Lfunc_end)")
    end = next(i for i in range(start + 1, len(lines)) if end_re.match(lines[i]))
    return lines[start + 1:end]


LABEL = re.compile(r"^([.\w$]+):")


def basic_blocks(body: list[str]) -> tuple[list[list[str]], list[list[int]], dict[str, int]]:
    """Blocks (instruction lists), successor indices and label -> block, for gcc or clang AArch64 asm."""
    blocks: list[list[str]] = [[]]
    labels: dict[str, int] = {}
    for line in body:
        m = LABEL.match(line)
        if m:
            if blocks[-1]:
                blocks.append([])
            labels[m.group(1)] = len(blocks) - 1
            continue
        s = line.split("//")[0].strip()
        if not s or s.startswith("."):
            continue
        blocks[-1].append(s)
        if BRANCH.match(s) or s.split()[0] in ("ret", "br"):
            blocks.append([])
    succ: list[list[int]] = []
    for i, blk in enumerate(blocks):
        out: list[int] = []
        last = blk[-1] if blk else ""
        op = last.split()[0] if last else ""
        if BRANCH.match(last):
            out.append(labels[last.replace(",", " ").split()[-1]])
        if op not in ("b", "ret", "br") and i + 1 < len(blocks):
            out.append(i + 1)
        succ.append(out)
    return blocks, succ, labels


def shortest_cycle(blocks: list[list[str]], succ: list[list[int]], t: int, b: int) -> list[int] | None:
    """Shortest cycle t -> ... -> t (weighted by instructions) through blocks t..b only."""
    import heapq

    dist = {t: len(blocks[t])}
    prev: dict[int, int] = {}
    heap = [(dist[t], t)]
    best: tuple[int, int] | None = None  # (length, last block before t)
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist.get(u, 1 << 30):
            continue
        for v in succ[u]:
            if v == t:
                if best is None or d < best[0]:
                    best = (d, u)
            elif t <= v <= b and d + len(blocks[v]) < dist.get(v, 1 << 30):
                dist[v] = d + len(blocks[v])
                prev[v] = u
                heapq.heappush(heap, (dist[v], v))
    if best is None:
        return None
    path = [best[1]]
    while path[-1] != t:
        path.append(prev[path[-1]])
    return path[::-1]


def main_cycle(src: str, fn: str, out: str, mnemonic: str, count: int) -> None:
    with open(src) as f:
        blocks, succ, _ = basic_blocks(function_body(f.read().splitlines(), fn))
    sig = re.compile(rf"(?:{mnemonic})$")
    found: list[tuple[int, int, list[int]]] = []  # (matching ops, instructions, path)
    for b, targets in enumerate(succ):
        for t in targets:
            if t <= b:
                path = shortest_cycle(blocks, succ, t, b)
                if path:
                    ins = [s for i in path for s in blocks[i]]
                    found.append((sum(bool(sig.match(s.split()[0])) for s in ins), len(ins), path))
    ok = sorted((n, p) for c, n, p in found if c == count)
    if not ok:
        sys.exit(f"extract.py: no loop of {fn} in {src} has {count} '{mnemonic}' ops (loops found: "
                 + ", ".join(f"{c} in {n} instructions" for c, n, _ in sorted(found)) + ")")
    loop = ["\t" + s for i in ok[0][1] for s in blocks[i]]
    with open(out, "w") as f:
        f.write(f"# LLVM-MCA-BEGIN {fn}\n" + "\n".join(loop) + "\n# LLVM-MCA-END\n")
    print(f"{out}: {len(loop)} instructions, {count} '{mnemonic}'")


if __name__ == "__main__":
    if sys.argv[1] == "--cycle":
        main_cycle(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
