#!/usr/bin/env bash
# The one script to run on a machine with an NVIDIA GPU (docs/cuda.md, "GPU check").
#
#   tools/gpu_check.sh prepare   here (with network): apt-get download the .deb files of the
#                                build dependencies into .gpu-deps/ (git-ignored, a few MiB)
#   tools/gpu_check.sh run       there (no network, nvcc/cmake/ninja/gcc/PyTorch but none of our
#                                dev packages; .gpu-deps in the call's carry list): unpack the
#                                .debs into .gpu-deps/root (dpkg -x, never into /), build with
#                                CUDA for sm_90, print the device, run the parity tests (default
#                                and earlier kernel versions; the CPU tests of the comparison too),
#                                the data-parallel path on one GPU through NCCL's single-rank
#                                communicator (tests -ts=distributed_cuda), the nn tests on CUDA
#                                (fused AdamW, autocast, the toy trainer: -ts=nn_cuda), the
#                                compute-sanitizer memcheck (parity kernels, then nn_cuda) and
#                                racecheck on the shared-memory kernels, then the CUDA benchmarks
#                                (cuDNN, loaded at run time, beside attention and layernorm), the
#                                PyTorch peer figures and a whole CLIP training step (ViT-B/32,
#                                ViT-B/16) beside PyTorch eager and compiled.
#                                Full logs and JSON under $OUT: summary.txt, tests.log and logs.tar.gz
#                                (the device tool returns at most 8 files); a short table last.
#
# Environment: OUT (default ./gpu-check-out), BUILD (default build-gpu), JOBS (default nproc),
# ARCHS (default 90), SKIP_SANITIZER=1, SKIP_BENCH=1, DEADLINE (seconds for the whole run, default
# 500: each later stage gets what is left, capped, and is skipped when too little is).
set -uo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
DEPS="$ROOT_DIR/.gpu-deps"
PREFIX="$DEPS/root"

# Debian 12 names. The -dev packages, plus the shared libraries their CMake/pkg-config files
# link against that a bare machine lacks, plus pkg-config itself.
PACKAGES=(
  doctest-dev
  libbenchmark-dev libbenchmark1debian
  libstb-dev
  libutf8proc-dev libutf8proc2
  nlohmann-json3-dev
  libtomlplusplus-dev libtomlplusplus3
  libcli11-dev
  zlib1g-dev zlib1g
  pkgconf pkgconf-bin libpkgconf3
)

prepare() {
  mkdir -p "$DEPS"
  cd "$DEPS" || exit 1
  rm -rf ./*.deb ./root  # root/: an unpacked prefix from a local build-only run would travel too
  echo "gpu_check prepare: downloading ${#PACKAGES[@]} packages into $DEPS"
  if ! apt-get download "${PACKAGES[@]}"; then
    echo "gpu_check prepare: apt-get download failed (try: apt-get update)" >&2
    exit 1
  fi
  ls -la ./*.deb
  du -sh "$DEPS"
}

unpack() {
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  local n=0
  for f in "$DEPS"/*.deb; do
    [ -e "$f" ] || { echo "gpu_check run: no .deb files in $DEPS: run 'tools/gpu_check.sh prepare' here first" >&2; exit 1; }
    if command -v dpkg-deb > /dev/null; then
      dpkg-deb -x "$f" "$PREFIX" || exit 1
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
      (tmp=$(mktemp -d) && cd "$tmp" && ar x "$f" && tar -xf data.tar.* -C "$PREFIX" && rm -rf "$tmp") || exit 1
    fi
    n=$((n + 1))
  done
  echo "gpu_check run: unpacked $n packages into $PREFIX"
}

# Points cmake, pkg-config and the loader at the unpacked prefix.
prefix_env() {
  local multiarch=x86_64-linux-gnu
  export LD_LIBRARY_PATH="$PREFIX/usr/lib/$multiarch:$PREFIX/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # LIBDIR, not PATH: search the prefix only (a system .pc read through the sysroot would point nowhere).
  export PKG_CONFIG_LIBDIR="$PREFIX/usr/lib/$multiarch/pkgconfig:$PREFIX/usr/share/pkgconfig"
  unset PKG_CONFIG_PATH
  export PKG_CONFIG_SYSROOT_DIR="$PREFIX"   # the .pc files say /usr: read that as $PREFIX/usr
  export CMAKE_PREFIX_PATH="$PREFIX/usr"
  PKG_CONFIG_BIN="$PREFIX/usr/bin/pkgconf"
  [ -x "$PKG_CONFIG_BIN" ] || PKG_CONFIG_BIN=$(command -v pkg-config || true)
}

# NCCL: the CUDA toolkit's, else the one PyTorch's nvidia-nccl wheel brings (include/, lib/libnccl.so.2).
nccl_root() {
  local cuda_inc
  cuda_inc=$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")/../include
  [ -f "$cuda_inc/nccl.h" ] && return 0
  python3 -c 'import nvidia.nccl as m, os; p = list(m.__path__)[0]; print(p if os.path.exists(p + "/include/nccl.h") else "")' \
    2> /dev/null || true
}

configure_and_build() {
  local build=$1 archs=$2 jobs=$3
  local cuda_flag=ON
  [ "${GPU_CHECK_CUDA:-ON}" = "OFF" ] && cuda_flag=OFF
  local nccl
  nccl=$(nccl_root)
  cmake -S "$ROOT_DIR" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DMINIVL_CUDA=$cuda_flag -DMINIVL_CUDA_ARCHS="$archs" \
    -DCMAKE_PREFIX_PATH="$PREFIX/usr" \
    -DCMAKE_INCLUDE_PATH="$PREFIX/usr/include" \
    -DCMAKE_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu" \
    -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG_BIN" \
    ${nccl:+-DMINIVL_NCCL_ROOT="$nccl"} \
    -DCMAKE_BUILD_RPATH="$PREFIX/usr/lib/x86_64-linux-gnu${nccl:+;$nccl/lib}" || return 1
  ninja -C "$build" -j"$jobs"
}

# Seconds a stage may take: its cap, or what is left before the deadline (minus 15 s for the
# summary); 0 when too little is left to be worth starting.
budget() {
  local cap=$1 left=$((${DEADLINE:-500} - (SECONDS - RUN_T0) - 15))
  [ $left -lt 20 ] && { echo 1; return; }  # 1, not 0: "timeout 0" would mean no limit
  echo $((left < cap ? left : cap))
}

# One doctest suite of $build's minivl_tests within SECONDS of what is left of the budget (none
# left: skipped), its output in $out/LOG and the lines matching PATTERN printed; the exit status,
# or "skipped", in suite_rc. Called from run(), whose locals build and out it reads.
run_suite() {
  local seconds=$1 suite=$2 log=$3 pattern=$4
  suite_rc=skipped
  if [ "$(budget "$seconds")" -gt 1 ]; then
    timeout "$(budget "$seconds")" "$build/bin/minivl_tests" -ts="$suite" > "$out/$log" 2>&1
    suite_rc=$?
    grep -E "$pattern" "$out/$log" | tail -n 8
  fi
}

run() {
  RUN_T0=$SECONDS
  local out=${OUT:-$ROOT_DIR/gpu-check-out}
  local build=${BUILD:-$ROOT_DIR/build-gpu}
  local jobs=${JOBS:-$(nproc)}
  local archs=${ARCHS:-90}
  mkdir -p "$out"
  local t0=$SECONDS
  cd "$ROOT_DIR" || exit 1
  unpack
  prefix_env

  echo "== build (sm_$archs, $jobs jobs)"
  configure_and_build "$build" "$archs" "$jobs" > "$out/build.log" 2>&1
  local build_rc=$?
  tail -n 5 "$out/build.log"
  local build_s=$((SECONDS - t0))
  if [ $build_rc -ne 0 ]; then
    echo "gpu_check run: the build failed (rc $build_rc); the log is $out/build.log" >&2
    tail -n 60 "$out/build.log" >&2
    exit 1
  fi

  echo "== device"
  {
    nvidia-smi || echo "nvidia-smi: not available"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
    "$build/bin/minivl" ops || true
    "$build/bin/minivl" ops --versions || true
  } > "$out/device.log" 2>&1
  cat "$out/device.log"
  local device_name
  device_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)

  # parity_cuda prints one line per (op, dtype) with the largest fraction of its bound any element
  # used; parity_compare is the CPU test of the comparison itself (seconds).
  echo "== parity tests"
  local t1=$SECONDS
  timeout "$(budget 180)" "$build/bin/minivl_tests" -ts=parity_cuda,parity_compare,parity_contrastive_v3 > "$out/tests.log" 2>&1
  local parity_rc=$?
  grep -E "FAILED|ERROR" "$out/tests.log" | head -n 20
  tail -n 8 "$out/tests.log"
  local parity_s=$((SECONDS - t1))

  # The defaults are the tensor-core versions (attention v3, contrastive v2); the earlier ones stay
  # reachable (environment, benchmarks), so their parity is checked too.
  echo "== parity tests, earlier versions (attention v2, contrastive v1)"
  MINIVL_ATTENTION_VERSION=2 MINIVL_CONTRASTIVE_VERSION=1 MINIVL_PARITY_OPS=attention,clip_loss,siglip_loss \
    timeout "$(budget 120)" "$build/bin/minivl_tests" -ts=parity_cuda > "$out/tests_earlier.log" 2>&1
  local earlier_rc=$?
  echo "earlier versions rc=$earlier_rc" | tee -a "$out/tests_earlier.log"
  tail -n 8 "$out/tests_earlier.log"

  # Data parallelism on one GPU: collectives and a tiny CLIP trained through a one-rank group
  # (NCCL's single-rank communicator), compared with plain training (docs/distributed.md).
  echo "== data parallel, one rank through NCCL"
  run_suite 120 distributed_cuda distributed.log "distributed_cuda|loss rel diff|test cases|ERROR|FAILED"
  local dist_rc=$suite_rc

  # nn on CUDA: the fused multi-tensor AdamW against the CPU's, bf16 autocast, the toy trainer's
  # loss falling in f32, bf16 and f16 on the GPU (tests/test_nn_cuda.cpp).
  echo "== nn tests on CUDA"
  run_suite 90 nn_cuda nn_cuda.log "nn_cuda: skipped|test cases|ERROR|FAILED"
  local nn_rc=$suite_rc

  # The sanitizer runs check memory accesses, not values: MINIVL_PARITY_GPU_ONLY runs each case on
  # the GPU only (no CPU reference, no error model), which halves their time.
  local memcheck_rc=skipped nn_memcheck_rc=skipped racecheck_rc=skipped candidates_rc=skipped
  if [ "${SKIP_SANITIZER:-0}" != 1 ] && command -v compute-sanitizer > /dev/null && [ "$(budget 120)" -gt 1 ]; then
    echo "== compute-sanitizer memcheck (parity tests)"
    MINIVL_PARITY_GPU_ONLY=1 timeout "$(budget 120)" compute-sanitizer --tool memcheck --error-exitcode 7 --print-limit 20 \
      "$build/bin/minivl_tests" -ts=parity_cuda -tc='*every op*' > "$out/sanitizer.log" 2>&1
    memcheck_rc=$?
    grep -E "ERROR SUMMARY|test cases" "$out/sanitizer.log" | tail -n 3
    if [ "$(budget 60)" -gt 1 ]; then
      echo "== compute-sanitizer memcheck (nn_cuda: AdamW, autocast, the toy trainer)"
      {
        echo "---- memcheck nn_cuda ----"
        timeout "$(budget 60)" compute-sanitizer --tool memcheck --error-exitcode 7 --print-limit 20 \
          "$build/bin/minivl_tests" -ts=nn_cuda
      } >> "$out/sanitizer.log" 2>&1
      nn_memcheck_rc=$?
      grep -E "ERROR SUMMARY|test cases" "$out/sanitizer.log" | tail -n 2
    fi
    echo "== compute-sanitizer racecheck (shared-memory kernels)"
    {
      echo "---- racecheck ----"
      MINIVL_PARITY_GPU_ONLY=1 \
        MINIVL_PARITY_OPS=sum,max,argmax,topk,softmax,cross_entropy,layernorm,add_layernorm,clip_loss,siglip_loss,attention \
        timeout "$(budget 90)" compute-sanitizer --tool racecheck --error-exitcode 7 --print-limit 20 \
        "$build/bin/minivl_tests" -ts=parity_cuda -tc='*every op*'
    } >> "$out/sanitizer.log" 2>&1
    racecheck_rc=$?
    grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "$out/sanitizer.log" | tail -n 2
    # The candidates (attention v4, contrastive v3) are called directly by their parity files, not
    # through the registered op, so the runs above do not reach them: one case per kernel path.
    if [ "$(budget 60)" -gt 1 ]; then
      echo "== compute-sanitizer memcheck + racecheck (candidates: attention v4, contrastive v3)"
      local tool
      candidates_rc=0
      for tool in memcheck racecheck; do
        {
          echo "---- $tool candidates ----"
          timeout "$(budget 60)" compute-sanitizer --tool "$tool" --error-exitcode 7 --print-limit 20 \
            "$build/bin/minivl_tests" -ts=parity_cuda -tc='*sanitizer subset*'
          local rc_v4=$?
          MINIVL_PARITY_V3_MAX_N=100 timeout "$(budget 60)" compute-sanitizer --tool "$tool" --error-exitcode 7 \
            --print-limit 20 "$build/bin/minivl_tests" -ts=parity_contrastive_v3
          local rc_v3=$?
          [ $rc_v4 -ne 0 ] && candidates_rc=$rc_v4
          [ $rc_v3 -ne 0 ] && candidates_rc=$rc_v3
        } >> "$out/sanitizer.log" 2>&1
      done
      grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "$out/sanitizer.log" | tail -n 4
    fi
  fi

  local bench_rc=skipped torch_rc=skipped
  if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$(budget 90)" -gt 1 ]; then
    echo "== benchmarks"
    timeout "$(budget 60)" "$build/bin/bench_cuda" --benchmark_out="$out/bench_cuda.json" \
      --benchmark_out_format=json > "$out/bench_cuda.txt" 2>&1
    bench_rc=$?
    # bench:cap in seconds (each row is checked against the CPU first; the attention and layernorm
    # rows include cuDNN's, named *Cudnn*: their table is bench/peer_tables.py's, below).
    for spec in bench_layernorm:60 bench_contrastive:45 bench_attention:120; do
      local b=${spec%%:*} cap=${spec##*:}
      [ "$(budget "$cap")" -gt 1 ] || break
      timeout "$(budget "$cap")" "$build/bin/$b" --benchmark_filter='Cuda|Cudnn' --benchmark_min_time=0.05 \
        --benchmark_out="$out/$b.json" --benchmark_out_format=json > "$out/$b.txt" 2>&1 || true
    done
    echo "== PyTorch peer"
    PYTHONUNBUFFERED=1 timeout "$(budget 90)" python3 "$ROOT_DIR/bench/compare_torch.py" --out "$out/torch.json"
    torch_rc=$?
    # The machine's facts beside the JSON: a folder tools/bench_report.py turns into report.md once committed.
    python3 "$ROOT_DIR/tools/machine_facts.py" --out "$out/machine.json" --results "$out" --build "$build" || true
  fi

  # ---- the whole CLIP training step beside PyTorch (issue 24; ~90 s): minivl bench-step on ViT-B/32
  # and ViT-B/16, then bench/torch_clip_step.py eager and torch.compile (every config eager first;
  # its JSON is rewritten after each row, so a time-out keeps what was measured; it skips, saying
  # why, without PyTorch, transformers or CUDA). The table is bench/clip_step_table.py's, below.
  if [ "${SKIP_BENCH:-0}" != 1 ] && [ "$(budget 90)" -gt 1 ]; then
    echo "== CLIP training step: minivl bench-step, PyTorch eager and compiled"
    local step_cfg
    for step_cfg in clip_vitb32 clip_vitb16; do
      timeout "$(budget 20)" "$build/bin/minivl" bench-step --config "$ROOT_DIR/configs/$step_cfg.toml" --steps 20 \
        --warmup 3 --phase-steps 0 > "$out/step_minivl_$step_cfg.json" 2> "$out/step_minivl_$step_cfg.err" \
        || echo "bench-step $step_cfg: rc $? ($(tail -n 1 "$out/step_minivl_$step_cfg.err"))"
    done
    PYTHONUNBUFFERED=1 timeout "$(budget 60)" python3 "$ROOT_DIR/bench/torch_clip_step.py" --mode both \
      --config "$ROOT_DIR/configs/clip_vitb32.toml" --config "$ROOT_DIR/configs/clip_vitb16.toml" \
      --out "$out/step_torch.json" > "$out/step_torch.txt" 2>&1 || echo "torch_clip_step: rc $? (partial rows kept)"
  fi

  python3 - "$out" "$device_name" "$build_s" "$parity_rc" "$parity_s" "$memcheck_rc" "$racecheck_rc" \
    "$bench_rc" "$torch_rc" "$dist_rc" "$earlier_rc" "$nn_rc" "$nn_memcheck_rc" "$candidates_rc" << 'PY' | tee "$out/summary.txt"
import json, os, re, sys
(out, device, build_s, parity_rc, parity_s, memcheck_rc, racecheck_rc, bench_rc, torch_rc, dist_rc, earlier_rc,
 nn_rc, nn_memcheck_rc, candidates_rc) = sys.argv[1:]
def read(name):
    try:
        return open(os.path.join(out, name), errors="replace").read()
    except OSError:
        return ""
def status(rc):
    return "skipped" if rc == "skipped" else ("ok" if rc == "0" else f"FAILED (rc {rc})")
def sanitizer_status(rc):  # --error-exitcode 7; any other failure is the tests' own
    if rc in ("skipped", "0", "7"):
        return status(rc) + (": the sanitizer found errors" if rc == "7" else "")
    return f"no sanitizer errors, but a test failed or timed out (rc {rc})"
tests = read("tests.log")
cases = re.findall(r"test cases:.*", tests)
compared = re.findall(r"parity_cuda: (\d+) cases compared", tests)
print("")
print(f"gpu_check summary: {device or 'unknown device'}")
print(f"  build            {build_s} s")
print(f"  parity tests     {status(parity_rc)} in {parity_s} s; {compared[-1] if compared else '?'} cases; {cases[-1] if cases else ''}")
rows = re.findall(r"parity_cuda: row (\S+) (\S+) +(\d+) cases, (\S+), worst (\S+) of the bound", tests)
failed_rows = [f"{op} {dt}" for op, dt, _, verdict, _ in rows if verdict != "ok"]
if rows:
    print(f"  parity rows      {len(rows) - len(failed_rows)} of {len(rows)} (op, dtype) rows ok" +
          (f"; FAILED: {', '.join(failed_rows[:12])}" if failed_rows else ""))
    top = sorted(rows, key=lambda r: -float(r[4]))[:3]
    print("  closest to bound " + ", ".join(f"{op} {dt} {float(w):.2f}" for op, dt, _, _, w in top))
# The f16 var of 70 000 values (inf before var took the mean of squares) was fixed after the first GPU run.
var_f16 = [r for r in rows if r[0] == "var" and r[1] == "f16"]
print(f"  var f16 (70 000) {var_f16[0][3] + ' (' + var_f16[0][2] + ' cases)' if var_f16 else 'not run'}")
print(f"  earlier versions {status(earlier_rc)} (attention v2, contrastive v1)")
nn_cases = re.findall(r"test cases:.*", read("nn_cuda.log"))
nn_skip = re.findall(r"nn_cuda: skipped: .*", read("nn_cuda.log"))
print(f"  nn_cuda          {status(nn_rc)} {nn_skip[-1] if nn_skip else (nn_cases[-1] if nn_cases else '')}")
print(f"  memcheck         {sanitizer_status(memcheck_rc)}")
print(f"  memcheck nn_cuda {sanitizer_status(nn_memcheck_rc)}")
print(f"  candidates       {sanitizer_status(candidates_rc)}  (v4, v3: memcheck + racecheck)")
print(f"  racecheck        {sanitizer_status(racecheck_rc)}")
dist = re.findall(r"loss rel diff .*", read("distributed.log"))
skipped = re.findall(r"distributed_cuda: skipped: .*", read("distributed.log"))
print(f"  data parallel    {status(dist_rc)} (one rank, NCCL) {dist[-1] if dist else (skipped[-1] if skipped else '')}")
ours = {}
try:
    for b in json.load(open(os.path.join(out, "bench_cuda.json")))["benchmarks"]:
        name = re.sub(r"/(manual_time|real_time|iterations:\d+)", "", b["name"])
        if b.get("error_occurred"):
            ours[name] = ("error", b.get("error_message", ""))
            continue
        rate = b.get("TFLOPS", b.get("GBps"))
        unit = "TFLOP/s" if "TFLOPS" in b else "GB/s"
        ours[name] = (b["real_time"], rate, unit)  # the counters are already TFLOP/s and GB/s
except (OSError, ValueError, KeyError) as e:
    print(f"  benchmarks       {status(bench_rc)} ({e})")
peers = {}
try:
    for p in json.load(open(os.path.join(out, "torch.json")))["results"]:
        peers[p["name"]] = p
except (OSError, ValueError, KeyError) as e:
    print(f"  torch peer       {status(torch_rc)} ({e})")
if ours:
    print("")
    print(f"  {'benchmark':34s} {'minivl us':>10s} {'rate':>10s} {'torch us':>10s} {'rate':>10s}  unit")
    for name, v in ours.items():
        if v[0] == "error":
            print(f"  {name:34s} error: {v[1][:60]}")
            continue
        key = name.replace("BM_", "")
        p = peers.get(key, {})
        pt = f"{p['us']:10.1f}" if "us" in p else f"{'-':>10s}"
        pr = f"{p['rate']:10.1f}" if "rate" in p else f"{'-':>10s}"
        rate = f"{v[1]:10.1f}" if v[1] else f"{'-':>10s}"
        print(f"  {name:34s} {v[0]:10.1f} {rate} {pt} {pr}  {v[2]}")
PY
  # Attention and layernorm: minivl's versions beside cuDNN and PyTorch, from the JSON above.
  python3 "$ROOT_DIR/bench/peer_tables.py" "$out" 2>&1 | tee -a "$out/summary.txt"
  # The CLIP training step: minivl / eager and minivl / compiled (issue 24).
  python3 "$ROOT_DIR/bench/clip_step_table.py" "$out" 2>&1 | tee -a "$out/summary.txt"
  # The device tool returns at most 8 files: keep the summary and the parity log loose, the rest in one archive.
  (cd "$out" && tar -czf logs.tar.gz --exclude=logs.tar.gz --exclude=summary.txt --exclude=tests.log ./* \
    && find . -maxdepth 1 -type f ! -name logs.tar.gz ! -name summary.txt ! -name tests.log -delete) || true
  echo "gpu_check run: done in $((SECONDS - t0)) s; logs and JSON in $out (logs.tar.gz)"
  [ "$parity_rc" = 0 ] && { [ "$dist_rc" = 0 ] || [ "$dist_rc" = skipped ]; } && { [ "$nn_rc" = 0 ] || [ "$nn_rc" = skipped ]; }
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  build-only)  # test the unpack + configure + build part on a machine without a GPU
    cd "$ROOT_DIR" && unpack && prefix_env && configure_and_build "${BUILD:-$ROOT_DIR/build-gpu}" "${ARCHS:-90}" "${JOBS:-2}" ;;
  *)
    echo "usage: tools/gpu_check.sh prepare|run|build-only" >&2
    exit 2
    ;;
esac
