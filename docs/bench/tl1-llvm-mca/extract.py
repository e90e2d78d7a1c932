#!/usr/bin/env python3
"""Cut the steady-state inner loop out of a clang -S file and wrap it in LLVM-MCA-BEGIN/END markers.

usage: extract.py FILE.s FUNCTION OUT.s [BLOCKS...]
The loop is the first 'Inner Loop Header' of FUNCTION, up to and including its first conditional branch;
if that branch targets another block (a latch), the block is appended; extra basic-block labels are
appended in the order given.
"""

from __future__ import annotations

import re
import sys

BRANCH = re.compile(r"(b(\.\w+)?|[ct]bn?z)\s")


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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
