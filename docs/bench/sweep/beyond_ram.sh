#!/bin/sh
# Beyond RAM, reproduced on one machine: tg of a model whose file is larger than the memory its process may use.
# A cgroup v1 memory limit (root; /sys/fs/cgroup/memory) stands for a machine with less RAM than the file: the page
# cache of the mapped file is charged to the group, so the kernel must drop pages the next token reads again.
# usage: beyond_ram.sh MODEL.gguf LIMIT_MIB [BUILD_DIR]
set -eu
model=$1 limit=$2 build=${3:-build}
cg=/sys/fs/cgroup/memory/bitnet-beyond-ram-$$
mkdir "$cg"
trap 'rmdir "$cg"' EXIT
echo $((limit * 1024 * 1024)) > "$cg/memory.limit_in_bytes"
echo "file: $(du -m "$model" | cut -f1) MiB, limit: $limit MiB"
echo "without the limit:"
"$build/bin/llama-bench" -m "$model" -p 0 -n 8 -r 1 -t 2 -o csv | tail -1 | awk -F, '{print "  tg8 " $(NF-1) " t/s"}'
# pages already in the page cache stay charged to whoever read them first: drop the file's clean pages, so the
# limited process reads (and is charged for) every page it maps
evict() { python3 -c "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$model"; }
evict
echo "inside the limit (the first token also loads the file):"
sh -c "echo \$\$ > $cg/cgroup.procs; exec $build/bin/llama-bench -m $model -p 0 -n 8 -r 1 -t 2 -o csv" | tail -1 |
    awk -F, '{print "  tg8 " $(NF-1) " t/s"}'
echo "pages charged to the group: $(($(grep -E '^pgpgin ' "$cg/memory.stat" | cut -d' ' -f2) * 4 / 1024)) MiB, peak $(($(cat "$cg/memory.max_usage_in_bytes") / 1048576)) MiB"
echo "run_inference.py inside the limit (the memory check):"
evict
sh -c "echo \$\$ > $cg/cgroup.procs; exec python run_inference.py -m $model -p hi -n 4" 2>&1 | tail -1 || true
