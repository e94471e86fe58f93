#!/usr/bin/env bash
# ptxas gate: compiles CUDA files with `nvcc -Xptxas -v` for each architecture and fails when a
# kernel spills registers, keeps a stack frame (local-memory arrays) or declares more static
# shared memory than a block may have (48 KiB; dynamic shared memory is checked where it is
# sized, e.g. the static_assert in kernels/cuda/contrastive_v3_plan.h).
#
#   tools/ptxas_gate.sh [-a "80 90"] [-o report.txt] kernels/cuda/contrastive_v3.cu ...
#
# Needs only nvcc (no GPU). Prints one line per kernel and architecture, then a verdict; with -o
# also writes the full ptxas output there (the form kept in bench/results/ptxas-*.txt).
set -euo pipefail

archs="80 90"
report=""
while getopts "a:o:" opt; do
  case $opt in
    a) archs=$OPTARG ;;
    o) report=$OPTARG ;;
    *) echo "usage: $0 [-a \"80 90\"] [-o report.txt] file.cu..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-a \"80 90\"] [-o report.txt] file.cu..." >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$nvcc" ] || { echo "ptxas_gate: nvcc not found (set NVCC)" >&2; exit 2; }
smem_limit=$((48 * 1024))

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/report"
failed=0
for f in "$@"; do
  [ -f "$f" ] || { echo "ptxas_gate: no such file: $f" >&2; exit 2; }
  for a in $archs; do
    log="$tmp/log"
    if ! "$nvcc" -std=c++20 -I"$root" --expt-relaxed-constexpr -arch="sm_$a" -Xptxas -v -c "$f" -o "$tmp/o.o" \
        > "$log" 2>&1; then
      echo "ptxas_gate: $f sm_$a does not compile:" >&2
      cat "$log" >&2
      exit 1
    fi
    { echo "## $(basename "$f") sm_$a"; grep -E "ptxas|bytes stack frame" "$log"; } >> "$tmp/report"
    # One record per entry function: its name, then its properties and resource lines.
    if ! awk -v file="$(basename "$f")" -v arch="sm_$a" -v limit="$smem_limit" '
      function flush() {
        if (name == "") return
        bad = (spill_st > 0 || spill_ld > 0 || stack > 0 || smem > limit)
        printf "%-4s %s %s regs=%d spill_st=%d spill_ld=%d stack=%d smem=%d %s\n", bad ? "FAIL" : "ok", file, arch,
               regs, spill_st, spill_ld, stack, smem, name
        if (bad) failed = 1
        name = ""
      }
      /Compiling entry function/ { flush(); name = $0; sub(/.*entry function .*\x27/, "", name);
                                   name = $0; sub(/.*function \x27/, "", name); sub(/\x27.*/, "", name);
                                   regs = spill_st = spill_ld = stack = smem = 0 }
      /bytes stack frame/ { stack = $1; spill_st = $5; spill_ld = $9 }
      /Used [0-9]+ registers/ { for (i = 1; i <= NF; ++i) { if ($(i + 1) == "registers,") regs = $i
                                                           if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem = $i } }
      END { flush(); exit failed }' "$log" > "$tmp/lines"; then
      failed=1
    fi
    # Readable names: demangled, without the anonymous namespace's per-file tag.
    if command -v c++filt > /dev/null; then c++filt < "$tmp/lines"; else cat "$tmp/lines"; fi |
      sed -E 's/\(anonymous namespace\):://g; s/minivl::cuda:://g'
  done
done
[ -z "$report" ] || cp "$tmp/report" "$report"
if [ $failed -ne 0 ]; then
  echo "ptxas_gate: FAILED (spills, a stack frame or static shared memory over $smem_limit bytes)"
  exit 1
fi
echo "ptxas_gate: ok ($* on sm_${archs// /, sm_})"
