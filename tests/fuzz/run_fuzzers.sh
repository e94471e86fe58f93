#!/usr/bin/env bash
# Runs every libFuzzer target in BIN_DIR for SECONDS each, one after another, on its seed
# corpus (tests/fuzz/corpus/<target>, read-only: new inputs go to a scratch folder).
# Usage: tests/fuzz/run_fuzzers.sh build-fuzz/bin 60 [target ...]
# A crash leaves crash-* / leak-* / timeout-* files in build-fuzz/artifacts/ and fails the run.
# Prints one summary line per target: executions, exec/s, coverage.
set -uo pipefail
BIN_DIR=${1:?usage: run_fuzzers.sh BIN_DIR SECONDS [target ...]}
SECONDS_EACH=${2:-60}
shift 2 || true
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ART=$(cd "$BIN_DIR/.." && pwd)/artifacts
mkdir -p "$ART"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$BIN_DIR"/fuzz_*; do targets+=("$(basename "$f")"); done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
failed=0
for t in "${targets[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  work=$(mktemp -d)
  log="$ART/$t.log"
  "$BIN_DIR/$t" "$work" "$seeds" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$ART/$t-" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $t ok: ${execs:-?} executions, ${rate:-?}/s, ${cov:-cov: ?} (${SECONDS_EACH}s)"
  else
    echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} executions; log $log, artifacts $ART/$t-*"
    grep -m1 -A15 'ERROR:\|runtime error\|==ERROR\|deadly signal' "$log" | head -30
    failed=1
  fi
  rm -rf "$work"
done
exit $failed
