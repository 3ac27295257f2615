#!/usr/bin/env bash
# GPU readiness in one prepared command (issue 13 item 18): on a CUDA machine, in ≤ 8 minutes,
#   1. the suite's CUDA-marked tests (tests/test_cuda.py: CUDA reproduces CPU to rounding,
#      compiled = eager on CUDA, a network on CUDA, free CUDA memory read),
#   2. the headline benchmarks on CUDA only: a potential at 1M chains (eager and compiled),
#      the 10k- and 1M-parameter MLPs at 8/64 chains (eager and compiled), and devinterp
#      beside lltools on the same MLP when devinterp is importable,
# and writes everything to one results file: $OUT/gpu_check.txt (OUT defaults to
# benchmarks/results). Never part of CI. Each step has its own time limit, so one slow or
# failing step still leaves the others' figures.
#
#   bash benchmarks/gpu_check.sh            # uses .venv/bin/python if present, else python3
#   PY=/path/to/python bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
RESULT="$OUT/gpu_check.txt"
export LLTOOLS_BENCH_DEVICES=cuda PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

step() {  # step SECONDS TITLE COMMAND...
  local limit=$1 title=$2; shift 2
  echo; echo "=== $title (limit ${limit}s) ==="
  local t0=$SECONDS
  timeout "$limit" "$@"; local rc=$?
  echo "--- $title: exit $rc after $((SECONDS - t0)) s"
}

{
  echo "lltools GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,memory.used,utilization.gpu,driver_version --format=csv 2>&1
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)   CPUs: $(nproc)"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA device visible to torch: nothing to check"; exit 0
  fi
  step 120 "CUDA-marked tests" "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
  step 120 "potential x**2 + y**2 at 1M chains" "$PY" benchmarks/bench_potentials.py --chains 1048576 \
       --potentials "x**2 + y**2" --dtypes float32 --out "$OUT/gpu_potentials.csv"
  step 150 "MLPs 10k and 1M parameters at 1/8/64 chains" "$PY" benchmarks/bench_networks.py --quick \
       --skip-trajectory --out "$OUT/gpu_networks.csv"
  if "$PY" -c "import devinterp" 2>/dev/null; then
    step 90 "devinterp beside lltools (10k MLP, 8 and 64 chains)" "$PY" benchmarks/bench_vs_devinterp.py \
         --quick --device cuda --cases mlp8 mlp64 --out "$OUT/gpu_vs_devinterp.csv"
  else
    echo; echo "=== devinterp not importable: its rows are left out (pip install devinterp) ==="
  fi
} 2>&1 | tee "$RESULT"
echo "results: $RESULT"
