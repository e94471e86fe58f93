#!/usr/bin/env bash
# Installs the Debian packages minivl builds against. Idempotent: a no-op when
# everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ make pkg-config
  doctest-dev libbenchmark-dev libstb-dev libutf8proc-dev nlohmann-json3-dev
  libtomlplusplus-dev libcli11-dev zlib1g-dev
  libopenblas-dev   # benchmark peer only
  dataset-fashion-mnist   # data/fashion_mnist.h: /usr/share/datasets/fashion-mnist
  clang libclang-rt-14-dev libomp-14-dev   # make fuzz (libFuzzer, clang's ASan/UBSan runtimes, OpenMP for clang)
  libopenmpi-dev openmpi-bin   # data parallelism: mpirun -np N minivl train (-DMINIVL_MPI=AUTO; docs/distributed.md)
  python3-matplotlib python3-numpy   # make bench's report (tools/bench_report.py), make figures, the demo's plot
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "bootstrap: missing packages (${missing[*]}) and not root; run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
