#!/usr/bin/env bash
# Model speed, one run for every comparison: fp32 vs bf16, linear vs delta, memory on vs off, and
# the Python reference (tests/reference/model_reference.py) of the same shape under bf16 autocast.
# Not a correctness check (the tests are). Usage: scripts/bench.sh [BUILD_DIR] [BATCH] [SEQ]
# (env THREADS=N: both sides on N threads, default 0 = all cores; STEPS=N timed steps, default 3)
# When BUILD2 (default build-torch2/, made by INFINI_TORCH=pip scripts/setup.sh) holds a LibTorch 2.x
# build, the same run also times it (sdpa and matmul attention) and the Python reference on its
# PyPI torch (eager), against the first build: the LibTorch flavours side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
B=${2:-4}
T=${3:-1024}
BIN="$BUILD/infini"
CFG=configs/bench/model.yaml
THREADS=${THREADS:-0}
STEPS=${STEPS:-3}
PY="/usr/bin/python3"
PYBENCH="tests/reference/model_reference.py --bench --threads $THREADS --steps $STEPS"
[[ -x "$BIN" ]] || { echo "error: $BIN not found; build first (cmake --build $BUILD --target infini)" >&2; exit 1; }

py_tps() {  # prints the fwd+bwd tokens/s of one Python reference run: py_tps PYTHON [reference flags]
  local py=$1
  shift
  "$py" $PYBENCH "$@" --batch "$B" --seq "$T" | tee >(cat >&2) | sed -n 's/^python reference: \([0-9]*\) tokens.*/\1/p'
}

train_tps() {  # prints the fwd+bwd tokens/s of one `infini bench model` run (of $BIN)
  "$BIN" bench model --config "$CFG" --batch "$B" --seq "$T" --steps "$STEPS" run.threads="$THREADS" "$@" | tee >(cat >&2) |
    sed -n 's/^train fwd+bwd: \([0-9]*\) tokens.*/\1/p'
}

echo "== infini bench model, B=$B T=$T"
bf16_lin=$(train_tps --precision bf16 model.memory.update=linear)
bf16_del=$(train_tps --precision bf16 model.memory.update=delta)
fp32_lin=$(train_tps --precision fp32 model.memory.update=linear)
bf16_off=$(train_tps --precision bf16 model.memory.enabled=false)

echo "== Python reference (bf16 autocast, same shape)"
py_lin=$(py_tps "$PY" --bf16 --update linear)
py_del=$(py_tps "$PY" --bf16 --update delta)
# The same, with glibc malloc told to keep freed memory as infini does (train/run/runtime.h), to show
# how much of the gap is the allocator and how much the model code.
py_lin_m=$(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
  py_tps "$PY" --bf16 --update linear)
# Memory off, both with kept malloc: the rest of the model code side by side. (With memory on, the
# reference's memory products run in bf16 under autocast; infini keeps them in fp32 as designed.)
py_off_m=$(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
  py_tps "$PY" --bf16 --no-memory)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "== summary (training tokens/s, fwd+bwd)"
printf '%-34s %8s\n' "bf16 linear" "$bf16_lin" "bf16 delta" "$bf16_del" "fp32 linear" "$fp32_lin" \
  "bf16 memory off" "$bf16_off" "python bf16 linear" "$py_lin" "python bf16 delta" "$py_del" \
  "python bf16 linear, tuned malloc" "$py_lin_m" "python bf16 memory off, tuned malloc" "$py_off_m"
echo "bf16 / fp32 (linear):          $(ratio "$bf16_lin" "$fp32_lin")x"
echo "delta / linear (bf16):         $(ratio "$bf16_del" "$bf16_lin")x"
echo "memory on / off (bf16 linear): $(ratio "$bf16_lin" "$bf16_off")x"
echo "infini / python (bf16 linear): $(ratio "$bf16_lin" "$py_lin")x"
echo "infini / python (bf16 delta):  $(ratio "$bf16_del" "$py_del")x"
echo "infini / python, both with kept malloc (bf16 linear): $(ratio "$bf16_lin" "$py_lin_m")x"
echo "infini / python, both with kept malloc (bf16 memory off): $(ratio "$bf16_off" "$py_off_m")x"

BUILD2=${BUILD2:-build-torch2}
if [[ -x "$BUILD2/infini" && "$BUILD2" != "$BUILD" ]]; then
  echo "== LibTorch flavours: $("$BIN" --version) against $("$BUILD2/infini" --version)"
  BIN1=$BIN
  BIN="$BUILD2/infini"
  t2_del=$(train_tps --precision bf16 model.memory.update=delta)
  t2_lin=$(train_tps --precision bf16 model.memory.update=linear)
  t2_del_mm=$(train_tps --precision bf16 --attention matmul model.memory.update=delta)
  BIN=$BIN1
  PY2="$BUILD2/venv/bin/python"
  py2_del=0 py2_lin=0
  if [[ -x "$PY2" ]]; then
    py2_del=$(py_tps "$PY2" --bf16 --update delta)
    py2_lin=$(py_tps "$PY2" --bf16 --update linear)
  fi
  echo "== LibTorch flavours (training tokens/s, bf16, memory on)"
  printf '%-44s %8s\n' "1.13 build, delta" "$bf16_del" "1.13 build, linear" "$bf16_lin" \
    "2.x build, delta (sdpa)" "$t2_del" "2.x build, linear (sdpa)" "$t2_lin" \
    "2.x build, delta (matmul attention)" "$t2_del_mm" \
    "python reference on 2.x torch, delta" "$py2_del" "python reference on 2.x torch, linear" "$py2_lin"
  echo "2.x / 1.13 (delta):                    $(ratio "$t2_del" "$bf16_del")x"
  echo "2.x / 1.13 (linear):                   $(ratio "$t2_lin" "$bf16_lin")x"
  echo "sdpa / matmul attention (2.x, delta):  $(ratio "$t2_del" "$t2_del_mm")x"
  if [[ "$py2_del" != 0 && "$py2_lin" != 0 ]]; then
    echo "infini 2.x / python 2.x (delta):       $(ratio "$t2_del" "$py2_del")x"
    echo "infini 2.x / python 2.x (linear):      $(ratio "$t2_lin" "$py2_lin")x"
  fi
fi
