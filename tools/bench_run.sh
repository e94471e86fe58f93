#!/usr/bin/env bash
# `make bench`: runs every benchmark binary into one results folder and writes its report.
#
#   tools/bench_run.sh [BUILD_DIR]          (default build)
#
# Folder: bench/results/<date>-<machine>/ (machine: the GPU's name when nvidia-smi sees one, else the
# CPU model, slugged; BENCH_OUT overrides the folder). In it: bench_<name>.json (Google Benchmark
# JSON) and bench_<name>.txt (the console output) per binary, machine.json (tools/machine_facts.py)
# and report.md with figures/ (tools/bench_report.py).
#
# Short by default, so that it is usable on a 2-core machine: --benchmark_min_time=$BENCH_MIN_TIME
# (0.05 s), and bench_contrastive only at N = 4096 (its N = 16384 and 65536 rows take minutes per call
# on a CPU). BENCH_FULL=1 runs every row. BENCH_ONLY="bench_gemm bench_machine" runs only those binaries.
set -uo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
MIN_TIME="${BENCH_MIN_TIME:-0.05}"
PYTHON="${PYTHON:-python3}"

binaries=()
for b in "$BUILD"/bin/bench_*; do
  [ -x "$b" ] || continue
  name="$(basename "$b")"
  if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $name "* ]]; then continue; fi
  binaries+=("$b")
done
if [ ${#binaries[@]} -eq 0 ]; then
  echo "bench: no benchmark binaries in $BUILD/bin (build first: make build)" >&2
  exit 1
fi

slug="$("$PYTHON" "$ROOT_DIR/tools/machine_facts.py" --slug)" || exit 1
out="${BENCH_OUT:-$ROOT_DIR/bench/results/$(date +%F)-$slug}"
mkdir -p "$out" || exit 1
rm -f "$out"/bench_*.json "$out"/bench_*.txt

quick_args() {
  [ "${BENCH_FULL:-0}" = 1 ] && return
  case "$1" in
    bench_contrastive) echo "--benchmark_filter=/4096/" ;;
  esac
}

failed=()
start=$(date +%s)
for b in "${binaries[@]}"; do
  name="$(basename "$b")"
  echo "== $name"
  # shellcheck disable=SC2046  # quick_args is one word or none
  "$b" --benchmark_min_time="$MIN_TIME" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
    $(quick_args "$name") 2>&1 | tee "$out/$name.txt"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
done

"$PYTHON" "$ROOT_DIR/tools/machine_facts.py" --out "$out/machine.json" --results "$out" --build "$BUILD" || failed+=("machine_facts")
if "$PYTHON" -c "import matplotlib, numpy" 2>/dev/null; then
  "$PYTHON" "$ROOT_DIR/tools/bench_report.py" "$out" || failed+=("bench_report")
else
  echo "bench: no report: $PYTHON cannot import matplotlib and numpy (apt-get install python3-matplotlib python3-numpy)" >&2
  failed+=("bench_report (matplotlib missing)")
fi

echo "== bench done in $(( $(date +%s) - start ))s: results in ${out#"$ROOT_DIR"/}/, report ${out#"$ROOT_DIR"/}/report.md"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
