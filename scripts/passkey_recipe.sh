#!/usr/bin/env bash
# The passkey recipe of docs/long-context.md, end to end, with the wall-clock time of each stage:
#   1. pretrain on the default corpora (configs/passkey/pretrain.yaml)
#   2. continue pretraining on 192-token passkey documents, plain text (retrieval.yaml)
#   3. SFT on 256-token passkey records, 5-digit keys (sft_256.yaml)
#   4. SFT on 1K-token records, 1-digit keys (sft_1k_d1.yaml)
#   5. SFT on ~4K-token records of four lengths, 1-digit keys (sft_4k_d1.yaml)
#   6. SFT on ~16K-token records (sft_16k_d1.yaml), then 7. the same plus records that end at a
#      segment boundary (sft_16k_d1b.yaml)
#   8. SFT on ~32K-token records, half of them ending at a segment boundary (sft_32k_d1.yaml)
#   9. eval passkey (1-digit keys) at LENGTHS, depths 0, 0.5 and 1
# Then, with the memory detached (each record costs about one forward pass, docs/long-context.md):
#  10. step 8 again from step 7 with the memory detached (sft_32k_d1.yaml + overrides)
#  11. ~64K-token records, four a step (sft_64k_detach_acc4.yaml)
#  12. ~256K-token records, four a step (sft_256k_detach.yaml)
#  13. eval passkey of that model at LENGTHS
# Needs the demo tokenizer and shards (scripts/run.sh makes them). Re-running resumes or skips.
# Usage: scripts/passkey_recipe.sh   (env: THREADS=0 for all cores, TRIALS=1, LENGTHS=32k,128k,1m; INFINI_TORCH=pip or INFINI for another build)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/flavour.sh
INFINI=${INFINI:-$BUILD_DIR/infini}  # INFINI_TORCH=pip: the torch 2.x build (build-torch2/)
T=data/work/demo/tokenizer.model
W=data/work/passkey
THREADS=${THREADS:-0}
TRIALS=${TRIALS:-1}
LENGTHS=${LENGTHS:-32k,128k,1m}
[[ -x $INFINI && -f $T ]] || { echo "error: run scripts/run.sh first (needs $INFINI and $T)" >&2; exit 1; }
timed() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "== $name: $((SECONDS - t0)) s"; }
synth() {  # out count seed length digits
  [[ -f $1 ]] || $INFINI data synth --task passkey --kind sft --tokenizer $T --out "$1" --count "$2" --seed "$3" \
    --length "$4" --digits "$5"
}
mix() {  # name count length...: 1-digit records of each prompt length (seed = length), then name_mix.jsonl
  local name=$1 count=$2 L files=(); shift 2
  [[ -f $W/${name}_mix.jsonl ]] && return
  for L in "$@"; do synth $W/${name}_$L.jsonl "$count" "$L" "$L" 1; files+=("$W/${name}_$L.jsonl"); done
  cat "${files[@]}" > $W/${name}_mix.jsonl
}

mkdir -p $W
synth $W/docs_192.jsonl 20000 7 192 5
if [[ ! -f $W/text_shards/index.json ]]; then
  # Passkey documents as plain text (prompt + answer), one per paragraph, for the pretrain stage.
  /usr/bin/python3 -c '
import json, sys
with open(sys.argv[2], "w") as f:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        f.write(r["prompt"] + r["response"] + "\n\n")' $W/docs_192.jsonl $W/docs_192.txt
  $INFINI data prepare --tokenizer $T --input $W/docs_192.txt --out $W/text_shards --threads "$THREADS"
fi
synth $W/sft_256.jsonl 8000 8 256 5
synth $W/sft_val_256.jsonl 64 97 256 5
synth $W/sft_1k_d1.jsonl 2400 9 1024 1
synth $W/sft_val_1k_d1.jsonl 32 96 1024 1
if [[ ! -f $W/sft_4k_d1_mix.jsonl ]]; then
  for e in 16 48 80 112; do synth $W/sft_4k_d1_$e.jsonl 150 $((20 + e)) $((4096 - e)) 1; done
  cat $W/sft_4k_d1_{16,48,80,112}.jsonl > $W/sft_4k_d1_mix.jsonl
fi
synth $W/sft_val_4k_d1.jsonl 16 95 4096 1
if [[ ! -f $W/sft_4k_d1_mix2.jsonl ]]; then
  # Prompt lengths 4073-4079 + the chat template end 0-6 tokens before a segment boundary
  # (configs/passkey/sft_4k_d1b.yaml, scripts/passkey_variant.sh's sft-4kb stage).
  for L in 4073 4074 4075 4076 4077 4078 4079; do synth $W/sft_4k_d1_b$L.jsonl 50 $L $L 1; done
  cat $W/sft_4k_d1_mix.jsonl $W/sft_4k_d1_b40{73,74,75,76,77,78,79}.jsonl > $W/sft_4k_d1_mix2.jsonl
fi
if [[ ! -f $W/sft_val_4k_d1b.jsonl ]]; then
  synth $W/sft_val_4k_d1b_4078.jsonl 8 5078 4078 1
  synth $W/sft_val_4k_d1b_4079.jsonl 8 5079 4079 1
  cat $W/sft_val_4k_d1b_407{8,9}.jsonl > $W/sft_val_4k_d1b.jsonl
fi
if [[ ! -f $W/sft_16k_d1_mix.jsonl ]]; then
  for e in 16 48 80 112; do synth $W/sft_16k_d1_$e.jsonl 80 $((40 + e)) $((16384 - e)) 1; done
  cat $W/sft_16k_d1_{16,48,80,112}.jsonl > $W/sft_16k_d1_mix.jsonl
fi
synth $W/sft_val_16k_d1.jsonl 8 94 16384 1
if [[ ! -f $W/sft_16k_d1_mix2.jsonl ]]; then
  # Prompt lengths 16364-16369 + the 18-token chat template end 5..0 tokens before a segment boundary.
  for L in 16364 16365 16366 16367 16368 16369; do synth $W/sft_16k_d1_b$L.jsonl 50 $L $L 1; done
  cat $W/sft_16k_d1_mix.jsonl $W/sft_16k_d1_b163{64,65,66,67,68,69}.jsonl > $W/sft_16k_d1_mix2.jsonl
fi
mix sft_32k_d1 30 32750 32751 32700 32640
synth $W/sft_val_32k_d1.jsonl 4 92 32750 1
# ~64K-token records for step 11 (and the two earlier 64K attempts, configs/experiments/passkey/sft_64k_d1.yaml and sft_64k_d2.yaml).
mix sft_64k_d1 30 65518 65519 65470 65400
synth $W/sft_val_64k_d1.jsonl 4 93 65518 1
# ~256K-token records for step 12 (the ~1M-token records of configs/experiments/passkey/sft_1m_detach.yaml: see that file).
mix sft_256k_d1 15 262126 262127 262078 262008
synth $W/sft_val_256k_d1.jsonl 2 90 262126 1
# ~128K-token records for configs/experiments/passkey/sft_128k_detach.yaml (beyond the recipe, not run here).
mix sft_128k_d1 10 131054 131055 130990 130900
synth $W/sft_val_128k_d1.jsonl 2 91 131054 1

timed "pretrain" $INFINI train configs/passkey/pretrain.yaml run.threads=$THREADS
timed "passkey documents" $INFINI train configs/passkey/retrieval.yaml run.threads=$THREADS
timed "sft 256 tokens" $INFINI train configs/passkey/sft_256.yaml run.threads=$THREADS
timed "sft 1K tokens" $INFINI train configs/passkey/sft_1k_d1.yaml run.threads=$THREADS
timed "sft 4K tokens" $INFINI train configs/passkey/sft_4k_d1.yaml run.threads=$THREADS
timed "sft 16K tokens" $INFINI train configs/passkey/sft_16k_d1.yaml run.threads=$THREADS
timed "sft 16K tokens, boundaries" $INFINI train configs/passkey/sft_16k_d1b.yaml run.threads=$THREADS
timed "sft 32K tokens" $INFINI train configs/passkey/sft_32k_d1.yaml run.threads=$THREADS
timed "eval passkey" $INFINI eval passkey --checkpoint runs/passkey-sft-32k-d1 --chat --precision auto --digits 1 \
  --lengths "$LENGTHS" --depths 0,0.5,1 --trials "$TRIALS" --threads "$THREADS" --out runs/passkey-sft-32k-d1/passkey.json
timed "sft 32K tokens, memory detached" $INFINI train configs/passkey/sft_32k_d1.yaml run.threads=$THREADS \
  model.memory.gradient=detach run.dir=runs/passkey-sft-32k-d1-detach
timed "sft 64K tokens, detached, 4 a step" $INFINI train configs/passkey/sft_64k_detach_acc4.yaml run.threads=$THREADS
timed "sft 256K tokens, detached, 4 a step" $INFINI train configs/passkey/sft_256k_detach.yaml run.threads=$THREADS
timed "eval passkey" $INFINI eval passkey --checkpoint runs/passkey-sft-256k-detach --chat --precision auto --digits 1 \
  --lengths "$LENGTHS" --depths 0,0.5,1 --trials "$TRIALS" --threads "$THREADS" --out runs/passkey-sft-256k-detach/passkey.json
