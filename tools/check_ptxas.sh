#!/usr/bin/env bash
# The ptxas gate: compiles CUDA sources with `nvcc -Xptxas -v` for each architecture and fails when
# any kernel spills registers (non-zero "bytes spill stores/loads") or declares more static shared
# memory than the architecture allows per block. Prints one line per kernel (registers, spills,
# stack, static smem); --write FILE also saves that table (bench/results/ptxas-attention-v4.txt).
#
#   tools/check_ptxas.sh [--write FILE] NVCC "80;90" kernels/cuda/attention_v4.cu ...
#
# Run from the repository root (ctest does: the test ptxas_attention_v4 in CMakeLists.txt). Exit 0:
# pass; 1: a spill or too much shared memory; 2: a compile error; 77: no nvcc (ctest reports a skip).
set -u
write=""
if [ "${1:-}" = "--write" ]; then
  write="$2"
  shift 2
fi
nvcc="${1:-}"
archs="${2:-80;90}"
shift 2 || true
sources=("$@")
if [ -z "$nvcc" ] || ! command -v "$nvcc" > /dev/null 2>&1; then
  nvcc="$(command -v nvcc || true)"
  [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc" ]; then
  echo "check_ptxas: skipped: nvcc not found"
  exit 77
fi
if [ "${#sources[@]}" -eq 0 ]; then
  echo "check_ptxas: no source files given" >&2
  exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
IFS=';' read -r -a arch_list <<< "$archs"

# One compile per (source, architecture), two at a time.
jobs=()
for src in "${sources[@]}"; do
  for arch in "${arch_list[@]}"; do
    log="$tmp/$(basename "$src").sm_$arch.log"
    "$nvcc" -std=c++20 -I. --expt-relaxed-constexpr -arch="sm_$arch" -Xptxas -v -c "$src" -o "$log.o" > "$log" 2>&1 &
    jobs+=("$!:$log")
    if [ "$(jobs -rp | wc -l)" -ge 2 ]; then wait -n; fi
  done
done
status=0
for j in "${jobs[@]}"; do
  if ! wait "${j%%:*}"; then
    echo "check_ptxas: compile failed: ${j#*:}" >&2
    cat "${j#*:}" >&2
    status=2
  fi
done
[ "$status" -ne 0 ] && exit "$status"

table="$tmp/table.txt"
{
  echo "# nvcc -Xptxas -v for $(printf '%s ' "${sources[@]}"); $("$nvcc" --version | grep -o 'release.*')"
  echo "# command: nvcc -std=c++20 -I. --expt-relaxed-constexpr -arch=sm_XX -Xptxas -v -c FILE   (XX = ${archs//;/, }: MINIVL_CUDA_ARCHS)"
  echo "# written by tools/check_ptxas.sh --write; the ctests ptxas_attention_v4 and ptxas_kernels fail on any spill or static smem over the limit."
  echo "# dynamic shared memory is checked where it is sized (attention_v4_plan.h, contrastive_v3_plan.h: their CPU tests)."
} > "$table"
for src in "${sources[@]}"; do
  for arch in "${arch_list[@]}"; do
    log="$tmp/$(basename "$src").sm_$arch.log"
    limit=$(( arch >= 90 ? 227 * 1024 : (arch >= 80 ? 163 * 1024 : 48 * 1024) ))
    awk -v file="$(basename "$src")" -v arch="$arch" -v limit="$limit" -v filt="$(command -v c++filt || true)" -v q="'" '
      function short(mangled,   name, cmd) {
        name = mangled
        if (filt != "") { cmd = filt " \"" mangled "\""; cmd | getline name; close(cmd) }
        gsub(/\(anonymous namespace\)::/, "", name)
        gsub(/minivl::(cuda::)?(v4::)?/, "", name)
        sub(/\(.*$/, "", name)                       # arguments
        sub(/^void /, "", name)                      # return type
        return name
      }
      /Compiling entry function/ { match($0, q "[^" q "]+" q); fn = short(substr($0, RSTART + 1, RLENGTH - 2)) }
      /bytes stack frame/ { stack = $1; st = $5; ld = $9 }
      /Used [0-9]+ registers/ {
        regs = $5; smem = 0
        if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH) + 0
        n++; lines[n] = sprintf("%-40s regs %3d  spill stores %3d loads %3d  stack %3d  smem %d", fn, regs, st, ld, stack, smem)
        if (st + 0 > 0 || ld + 0 > 0) { bad++; why[n] = "spills" }
        if (smem > limit) { bad++; why[n] = why[n] " smem over " limit }
      }
      END {
        printf "## %s sm_%s: %d kernels, %d with spills or too much shared memory\n", file, arch, n, bad + 0
        for (i = 1; i <= n; i++) print lines[i] (why[i] != "" ? "   <-- " why[i] : "")
        if (n == 0) { print "no kernels found in the ptxas output"; exit 1 }
        exit (bad > 0 ? 1 : 0)
      }' "$log" >> "$table" || status=1
  done
done
cat "$table"
[ -n "$write" ] && cp "$table" "$write"
if [ "$status" -ne 0 ]; then
  echo "check_ptxas: FAILED (a kernel spills or exceeds the shared-memory limit; see the marked lines)"
else
  echo "check_ptxas: passed"
fi
exit "$status"
