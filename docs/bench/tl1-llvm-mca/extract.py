#!/usr/bin/env python3
"""Cut the steady-state inner loop out of a clang -S file and wrap it in LLVM-MCA-BEGIN/END markers.
usage: extract.py FILE.s FUNCTION OUT.s [BLOCKS...]
If the loop's first branch targets another block (a latch) that block is appended automatically.
The loop is the first 'Inner Loop Header' of FUNCTION, up to and including its first conditional branch;
extra basic-block labels (e.g. a separate latch block) are appended in the order given."""
import re, sys
src, fn, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
lines = open(src).read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith(fn + ':'))
end = next(i for i in range(start, len(lines)) if lines[i].startswith('.Lfunc_end'))
body = lines[start:end]
def insns(i0):  # instructions of the basic block starting after line i0, until a conditional/uncond branch
    res = []
    for l in body[i0 + 1:]:
        s = l.split('//')[0].strip()
        if not s or s.startswith('.'): continue
        if s.endswith(':'): break
        res.append('\t' + s)
        if re.match(r'(b(\.\w+)?|[ct]bn?z)\s', s): break
    return res
hdr = next(i for i, l in enumerate(body) if 'Inner Loop Header' in l)
hdr_label = next(body[j] for j in range(hdr, -1, -1) if body[j].startswith('.LBB')).split(':')[0]
loop = insns(hdr)
tgt = loop[-1].split()[-1]
if tgt != hdr_label and not extra:  # the common path branches to a separate latch block (I2_S neon: flush skipped)
    extra = [tgt]
for lab in extra:
    loop += insns(next(i for i, l in enumerate(body) if l.startswith(lab + ':')))
open(out, 'w').write('# LLVM-MCA-BEGIN %s\n%s\n# LLVM-MCA-END\n' % (fn, '\n'.join(loop)))
print(out, len(loop), 'instructions')
