#!/usr/bin/env bash
# The GPU benchmark of the training loop, ready to run on one CUDA GPU (about 8 minutes on an H200):
# first the GPU tests (training; RL-Selector selecting on the GPU; an agent moved there), then
# benchmarks/gpu/bench.py, whose docstring says what
# it measures. It needs no install: the package is read from src/ (PYTHONPATH), with the python that
# holds a CUDA torch and the project's dependencies (numpy, scipy, scikit-learn, Pillow, typer, rich,
# PyYAML; matplotlib and pytest for the tests).
#
#   benchmarks/gpu/run.sh [OUT_DIR] [extra bench.py options, e.g. --skip compile]
#
# Results: OUT_DIR/gpu_bench.md (the tables for BENCHMARKS.md), gpu_bench.json, tests.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-benchmarks/gpu/out}}"
shift || true
python="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU visible to this torch")' || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
"$python" -m pytest -q -p no:cacheprovider tests/test_device.py 2>&1 | tee "$out/tests.log" | tail -3
"$python" -m pytest -q -p no:cacheprovider tests/test_select_runtime.py tests/test_agent.py -k "gpu or moved" 2>&1 | tee -a "$out/tests.log" | tail -3
timeout 900 "$python" benchmarks/gpu/bench.py --out "$out" "$@"
