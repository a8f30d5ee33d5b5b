#!/usr/bin/env bash
# The GPU checks and measurements in one run, for a machine with a CUDA GPU. From the repository root:
#     bash benchmarks/gpu.sh
# Python: $PY if set, else .venv/bin/python (make install), else python3 (a GPU image whose python3 holds
# torch, torchvision, triton, tensorboard, scipy, scikit-learn and pytest; the checkout goes on PYTHONPATH).
# Parts, each under its own time limit; a part that fails or times out is reported and the next one runs:
#   smoke     the tests marked cuda (pytest -m cuda): the SDK end to end on CUDA, the Triton kernel against
#             the float64 reference, gradcheck on CUDA
#   kernel    nas_sparsity on (32, 512, 16, 16) vs one a.sum(dim=1) on the GPU (target <= 2x)
#   nasreg    an SGD step of a width-1 VanillaNet with vs without NASReg (target <= 1.1x)
#   monitor   a ResNet-50 epoch (224x224, batch 128, autocast, 50 steps) with vs without one monitor.log
#             (target <= 1.02x)
# Expected to take about 3 minutes on an H200 (an estimate); every limit together
# (the parts' 340 s, the checks before them 80 s) comes to about 7. Each part's whole output is kept in
# $LOGS/<part>.log (default: $OUT/gpu-bench where OUT is set, else a new temporary folder); a summary ends
# the output.
# Exit status: 0 when every part passed, and without a CUDA device ("no CUDA device: nothing to measure");
# 1 when a part failed or timed out; 2 when no Python with torch is found.
set -u
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git') on $(hostname)"
timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi: not run"
timeout 60 "$PY" -c "
import sys, torch
try:
    import triton
    triton_version = triton.__version__
except ImportError:
    triton_version = 'not installed'
print(f'python {sys.version.split()[0]} ({sys.executable}), torch {torch.__version__}, CUDA {torch.version.cuda}, '
      f'cuDNN {torch.backends.cudnn.version()}, triton {triton_version}, CUDA device: {torch.cuda.is_available()}')
sys.exit(0 if torch.cuda.is_available() else 3)
"
rc=$?
if [ "$rc" = 3 ]; then
  echo "no CUDA device: nothing to measure"
  exit 0
elif [ "$rc" != 0 ]; then
  echo "no Python with torch: $PY exited with status $rc (set PY, or run make install)"
  exit 2
fi

LOGS=${LOGS:-${OUT:-$(mktemp -d)}/gpu-bench}
mkdir -p "$LOGS"
names=() states=() patterns=()
run_part() {  # name, limit in seconds, grep pattern of its summary lines, command...
  local name=$1 limit=$2 pattern=$3 start=$SECONDS rc
  shift 3
  echo
  echo "== $name (limit ${limit} s): $*"
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) state="ok" ;;
    124|137) state="FAILED: timed out after ${limit} s" ;;
    *) state="FAILED: exit status $rc" ;;
  esac
  names+=("$name") states+=("$state, $((SECONDS - start)) s") patterns+=("$pattern")
}

run_part smoke 100 '(passed|failed|FAILED|error|skipped|no tests ran)' \
  "$PY" -m pytest -m cuda -q -rs -p no:cacheprovider tests/test_fused.py tests/test_sparsity.py tests/test_monitor.py
run_part kernel 60 '^\[cuda\]' \
  "$PY" benchmarks/nas_kernel.py --device cuda --min-run-time 0.2
run_part nasreg 50 '(= [0-9.]+x|kept for backward)' \
  "$PY" benchmarks/nasreg_step.py --device cuda --width 1
run_part monitor 130 '(^\[cuda\]|per epoch|monitor\.log)' \
  "$PY" benchmarks/monitor_overhead.py --device cuda --model resnet50 --size 224 --batch 128 --steps 50 \
  --rounds 4 --amp auto --channels-last

echo
echo "== summary (logs in $LOGS)"
failed=0
for i in "${!names[@]}"; do
  echo "${names[$i]}: ${states[$i]}"
  grep -E "${patterns[$i]}" "$LOGS/${names[$i]}.log" | tail -n 12 | sed 's/^/    /'
  case ${states[$i]} in FAILED*) failed=1; tail -n 3 "$LOGS/${names[$i]}.log" | sed 's/^/    last: /' ;; esac
done
exit $failed
