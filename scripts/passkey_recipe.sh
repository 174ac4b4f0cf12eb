#!/usr/bin/env bash
# The passkey recipe of docs/passkey.md, end to end, with the wall-clock time of each stage:
# pretrain (configs/passkey/pretrain.yaml) -> passkey SFT records of 1K-4K tokens -> SFT
# (configs/passkey/sft.yaml) -> eval passkey at 32K, 128K and 1M tokens, depths 0, 0.5 and 1.
# Needs the demo tokenizer and shards (scripts/run.sh makes them). Re-running resumes.
# Usage: scripts/passkey_recipe.sh   (env: THREADS=0 for all cores, TRIALS=1, LENGTHS=32k,128k,1m)
set -euo pipefail
cd "$(dirname "$0")/.."
INFINI=build/infini
T=data/work/demo/tokenizer.model
W=data/work/passkey
THREADS=${THREADS:-0}
TRIALS=${TRIALS:-1}
LENGTHS=${LENGTHS:-32k,128k,1m}
[[ -x $INFINI && -f $T ]] || { echo "error: run scripts/run.sh first (needs $INFINI and $T)" >&2; exit 1; }
timed() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "== $name: $((SECONDS - t0)) s"; }

timed "pretrain" $INFINI train configs/passkey/pretrain.yaml run.threads=$THREADS
mkdir -p $W
if [[ ! -f $W/sft_val.jsonl ]]; then
  for spec in "1024 1" "2048 2" "4096 3"; do
    set -- $spec
    $INFINI data synth --task passkey --kind sft --count 300 --seed $2 --tokenizer $T --length $1 \
      --out $W/sft_$(( $1 / 1024 ))k.jsonl
  done
  $INFINI data synth --task passkey --kind sft --count 32 --seed 99 --tokenizer $T --length 2048 --out $W/sft_val.jsonl
fi
timed "sft" $INFINI train configs/passkey/sft.yaml run.threads=$THREADS
timed "eval passkey" $INFINI eval passkey --checkpoint runs/passkey-sft --chat --precision bf16 \
  --lengths "$LENGTHS" --depths 0,0.5,1 --trials "$TRIALS" --threads "$THREADS" --out runs/passkey-sft/passkey.json
