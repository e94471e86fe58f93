#!/usr/bin/env bash
# ctest bench_report: tools/bench_report.py builds a report from every committed results folder
# (bench/results/*/ with bench_*.json or bench_*.txt: the CPU runs of `make bench`, the GPU runs'
# console logs), in a scratch copy. Fails when a folder gives no report, no roofline, or a report
# links a figure that was not written. Exit 77 (ctest: skipped) when no python3 has matplotlib.
set -uo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=""
for p in python3 /usr/bin/python3; do
  if "$p" -c "import matplotlib, numpy" 2>/dev/null; then PY="$p"; break; fi
done
if [ -z "$PY" ]; then
  echo "bench_report test: skipped (no python3 with matplotlib and numpy: apt-get install python3-matplotlib)"
  exit 77
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
folders=0
failed=0
for d in "$ROOT_DIR"/bench/results/*/; do
  compgen -G "${d}bench_*.json" > /dev/null || compgen -G "${d}bench_*.txt" > /dev/null || continue
  name="$(basename "$d")"
  cp -r "$d" "$tmp/$name"
  rm -rf "$tmp/$name/figures" "$tmp/$name/report.md"
  folders=$((folders + 1))
  if ! "$PY" "$ROOT_DIR/tools/bench_report.py" "$tmp/$name" > "$tmp/$name.log" 2>&1; then
    echo "FAIL $name: bench_report.py failed:"; cat "$tmp/$name.log"; failed=1; continue
  fi
  if ! ls "$tmp/$name"/figures/roofline-*.png > /dev/null 2>&1; then
    echo "FAIL $name: no roofline figure"; failed=1
  fi
  links=0
  while read -r figure; do
    links=$((links + 1))
    [ -s "$tmp/$name/$figure" ] || { echo "FAIL $name: report.md links $figure, which was not written"; failed=1; }
  done < <(grep -o '](figures/[^)]*)' "$tmp/$name/report.md" | sed 's/^](//; s/)$//')
  [ "$links" -gt 0 ] || { echo "FAIL $name: report.md links no figure"; failed=1; }
  echo "ok   $name: report.md with $links figures"
done
[ "$folders" -gt 0 ] || { echo "FAIL: no results folder under bench/results"; exit 1; }
exit "$failed"
