#!/usr/bin/env bash
# Set up, build and run every test (optimized build): natively, then with oneDNN capped to AVX2 and to
# SSE4.1, since oneDNN picks its kernels by instruction set and float32 results differ between them by
# rounding; a tolerance that holds on one machine only fails here first. Then the Python module's tests
# (pytest), on this build's module whatever sieve.pth names. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"

# Runs the suite with ONEDNN_MAX_CPU_ISA=$1 (empty: no cap), first printing the ISA oneDNN reports.
run_suite() (
  if [ -n "$1" ]; then export ONEDNN_MAX_CPU_ISA="$1"; else unset ONEDNN_MAX_CPU_ISA; fi
  isa=$(ONEDNN_VERBOSE=1 ./build/release/sieve predict examples/fashion_cnn.onnx examples/images/00_ankle_boot.png 2>&1 |
    sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -n 1)
  echo "== tests with ONEDNN_MAX_CPU_ISA=${1:-(none)}: oneDNN runs ${isa:-an unreported ISA}"
  ctest --preset release -j "$(nproc)"
)
run_suite ""
run_suite AVX2
run_suite SSE41

echo "== Python tests"
PYTHONPATH="$PWD/build/release/python" PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE \
  /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/python
