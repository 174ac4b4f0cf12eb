#!/usr/bin/env bash
# Speed, every comparison in one run, as ratios against baselines measured in the same run:
#  - training (bench model config: 6 layers, d 384): infini's two memory update rules and memory off,
#    against the Python reference model (tests/reference/model_reference.py) of the same shape on
#    Debian's torch and on PyPI's torch 2.x (eager and torch.compile), with glibc malloc told to
#    keep freed memory as infini does (train/run/runtime.h) and, for the linear rule, without;
#  - MFU: the model's FLOP/s against the rate of a large matmul on this machine, both from infini;
#  - decoding (the demo model): one token per call at batch 1 and 16, the fast step against the
#    general streaming path, and llama2.c's run.c on the same weights when RUNC is given;
#  - with a LibTorch 2.x build beside it (BUILD2, default build-torch2/): the two flavours.
# Not a correctness check (the tests are). Usage: scripts/bench.sh [BUILD_DIR] [BATCH] [SEQ]
# Env: THREADS=N (both sides, default 0 = all cores), STEPS=N timed steps (default 3),
# PRECISION=auto|fp32|bf16 (default auto: bf16 where the machine computes it natively, else fp32;
# the Python side follows what infini resolved), COMPILE=0 skips torch.compile (it compiles for a
# minute or two first), RUNC=path/to/run.c's binary and RUNC_MODEL=model.bin for the llama2.c line.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
B=${2:-4}
T=${3:-1024}
BIN="$BUILD/infini"
CFG=configs/bench/model.yaml
THREADS=${THREADS:-0}
STEPS=${STEPS:-3}
PRECISION=${PRECISION:-auto}
COMPILE=${COMPILE:-1}
PY="/usr/bin/python3"
BUILD2=${BUILD2:-build-torch2}
PY2="$BUILD2/venv/bin/python"
PYBENCH="tests/reference/model_reference.py --bench --threads $THREADS --steps $STEPS"
KEEP_MALLOC=(env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864)
[[ -x "$BIN" ]] || { echo "error: $BIN not found; build first (cmake --build $BUILD --target infini)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

py_tps() {  # prints the fwd+bwd tokens/s of one Python reference run: py_tps [env ...] PYTHON [reference flags]
  local pre=()
  while [[ "$1" == env || "$1" == *=* ]]; do pre+=("$1"); shift; done
  local py=$1
  shift
  "${pre[@]}" "$py" $PYBENCH $PYBF "$@" --batch "$B" --seq "$T" 2>/dev/null | tee >(cat >&2) |
    sed -n 's/^python reference: \([0-9]*\) tokens.*/\1/p'
}

infini_model() {  # one `infini bench model` run of BIN; its output in $OUT/$1: infini_model NAME [args]
  local name=$1
  shift
  "$BIN" bench model --config "$CFG" --batch "$B" --seq "$T" --steps "$STEPS" --precision "$PRECISION" \
    run.threads="$THREADS" "$@" | tee "$OUT/$name" >&2
}
field() { sed -n "$2" "$OUT/$1" | head -1; }  # field NAME SED-SCRIPT
tps() { field "$1" 's/^train fwd+bwd: \([0-9]*\) tokens.*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

echo "== infini bench model, B=$B T=$T, precision $PRECISION"
infini_model del model.memory.update=delta
infini_model lin model.memory.update=linear
infini_model off model.memory.enabled=false
prec=$(field del 's/^setup: precision \([a-z0-9]*\),.*/\1/p')
PYBF=""
[[ "$prec" == bf16 ]] && PYBF="--bf16"

echo "== Python reference ($prec, same shape)"
py_del_m=$(py_tps "${KEEP_MALLOC[@]}" "$PY" --update delta)
py_lin_m=$(py_tps "${KEEP_MALLOC[@]}" "$PY" --update linear)
py_lin=$(py_tps "$PY" --update linear)
py_off_m=$(py_tps "${KEEP_MALLOC[@]}" "$PY" --no-memory)
py2_del=0 py2_lin=0 py2_del_c=0
if [[ -x "$PY2" ]]; then
  py2_del=$(py_tps "${KEEP_MALLOC[@]}" "$PY2" --update delta)
  py2_lin=$(py_tps "${KEEP_MALLOC[@]}" "$PY2" --update linear)
  [[ "$COMPILE" == 1 ]] && py2_del_c=$(py_tps "${KEEP_MALLOC[@]}" "$PY2" --update delta --compile || echo 0)
fi
best_py() { printf '%s\n' "$@" | sort -n | tail -1; }
py_best_del=$(best_py "$py_del_m" "$py2_del" "$py2_del_c")
py_best_lin=$(best_py "$py_lin_m" "$py2_lin")

echo "== decoding: the demo model, one token per call"
"$BIN" bench model --config configs/demo/pretrain.yaml --batch 1 --seq 128 --steps 1 --decode-tokens 256 \
  --precision "$PRECISION" run.threads="$THREADS" | tee "$OUT/dec1" >&2
"$BIN" bench model --config configs/demo/pretrain.yaml --batch 16 --seq 128 --steps 1 --decode-tokens 256 \
  --precision "$PRECISION" run.threads="$THREADS" | tee "$OUT/dec16" >&2
dec() { field "$1" "s/^stream tokens$2: \([0-9]*\) tokens.*/\1/p"; }
runc_tps=0 l2c_tps=0
if [[ -n "${RUNC:-}" && -n "${RUNC_MODEL:-}" ]]; then
  # The same llama2.c checkpoint both ways, greedy from BOS, 256 tokens, one stream: run.c prints
  # "achieved tok/s: X" on stderr; `infini generate --stats` counts the same way.
  nthreads=$THREADS
  [[ "$nthreads" == 0 ]] && nthreads=$(nproc)
  "$BIN" convert llama2c --model "$RUNC_MODEL" --out "$OUT/l2c" >/dev/null 2>&1
  runc_tps=$(OMP_NUM_THREADS=$nthreads "$RUNC" "$RUNC_MODEL" -t 0 -n 256 2>&1 >/dev/null |
    sed -n 's/^achieved tok\/s: \([0-9.]*\).*/\1/p')
  l2c_tps=$("$BIN" generate --checkpoint "$OUT/l2c" --prompt-ids 1 --temperature 0 --max-new-tokens 255 --eos -1 \
    --print-ids --threads "$nthreads" --stats 2>&1 >/dev/null | sed -n 's/.*; \([0-9.]*\) tokens\/s.*/\1/p')
fi

echo "== summary (training tokens/s, fwd+bwd, $prec, B=$B T=$T)"
printf '%-52s %8s\n' "infini delta" "$(tps del)" "infini linear" "$(tps lin)" "infini memory off" "$(tps off)" \
  "python delta, Debian torch, kept malloc" "$py_del_m" "python linear, Debian torch, kept malloc" "$py_lin_m" \
  "python linear, Debian torch, default malloc" "$py_lin" "python memory off, Debian torch, kept malloc" "$py_off_m" \
  "python delta, PyPI torch eager, kept malloc" "$py2_del" "python linear, PyPI torch eager, kept malloc" "$py2_lin" \
  "python delta, PyPI torch.compile, kept malloc" "$py2_del_c"
echo "infini / fastest python (delta):          $(ratio "$(tps del)" "$py_best_del")x"
echo "infini / fastest python (linear):         $(ratio "$(tps lin)" "$py_best_lin")x"
echo "infini / python as users run it (linear): $(ratio "$(tps lin)" "$py_lin")x"
echo "infini / python, memory off:              $(ratio "$(tps off)" "$py_off_m")x"
echo "delta / linear:                           $(ratio "$(tps del)" "$(tps lin)")x"
echo "memory on / off (delta):                  $(ratio "$(tps del)" "$(tps off)")x"
echo "$(field del 's/^\(matmul rate: .*\)/\1/p')"
echo "MFU (delta): $(field del 's/^MFU: \(.*\)/\1/p')"
echo "== summary (decoding tokens/s, demo model, one token per call)"
printf '%-52s %8s\n' "batch 1, fast step" "$(dec dec1 '')" "batch 1, general path" "$(dec dec1 ', general path')" \
  "batch 16, fast step" "$(dec dec16 '')" "batch 16, general path" "$(dec dec16 ', general path')"
echo "batch 16 / batch 1 (fast):                $(ratio "$(dec dec16 '')" "$(dec dec1 '')")x"
echo "batch 16, fast / general:                 $(ratio "$(dec dec16 '')" "$(dec dec16 ', general path')")x"
if [[ "$runc_tps" != 0 ]]; then
  echo "llama2.c run.c, $RUNC_MODEL:  $runc_tps tokens/s; infini generate on it: $l2c_tps tokens/s" \
    "($(ratio "$l2c_tps" "$runc_tps")x)"
fi

if [[ -x "$BUILD2/infini" && "$BUILD2" != "$BUILD" ]]; then
  echo "== LibTorch flavours: $("$BIN" --version) against $("$BUILD2/infini" --version)"
  BIN1=$BIN
  BIN="$BUILD2/infini"
  infini_model t2_del model.memory.update=delta
  infini_model t2_lin model.memory.update=linear
  infini_model t2_del_mm --attention matmul model.memory.update=delta
  BIN=$BIN1
  echo "== LibTorch flavours (training tokens/s, $prec, memory on)"
  printf '%-44s %8s\n' "1.13 build, delta" "$(tps del)" "1.13 build, linear" "$(tps lin)" \
    "2.x build, delta (sdpa)" "$(tps t2_del)" "2.x build, linear (sdpa)" "$(tps t2_lin)" \
    "2.x build, delta (matmul attention)" "$(tps t2_del_mm)"
  echo "2.x / 1.13 (delta):                      $(ratio "$(tps t2_del)" "$(tps del)")x"
  echo "2.x / 1.13 (linear):                     $(ratio "$(tps t2_lin)" "$(tps lin)")x"
  echo "sdpa / matmul attention (2.x, delta):    $(ratio "$(tps t2_del)" "$(tps t2_del_mm)")x"
  echo "infini 2.x / fastest python (delta):     $(ratio "$(tps t2_del)" "$py_best_del")x"
  echo "infini 2.x / fastest python (linear):    $(ratio "$(tps t2_lin)" "$py_best_lin")x"
  echo "2.x build MFU (delta): $(field t2_del 's/^MFU: \(.*\)/\1/p')"
fi
