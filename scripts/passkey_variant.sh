#!/usr/bin/env bash
# The passkey recipe (docs/long-context.md) again from pretraining with config overrides applied to every
# stage, to compare a model knob that cannot be switched at fine-tuning time (segment length, update
# rule). Stages, each initialised from the one before, into runs/passkey-NAME-*:
#   pretrain, retrieval, sft-256, sft-1k, sft-4k   (the recipe's steps 1-5, same configs)
#   sft-4kb   sft_4k_d1b.yaml: step 5 plus prompts ending at a segment boundary, as eval's 2^k lengths do
#             (only with LAST=sft-4kb; the path to sft-256k goes from sft-4k)
#   sft-32k   sft_32k_d1.yaml with the memory detached (the recipe's step 10, but from step 5)
#   sft-64k   sft_64k_detach_acc4.yaml               (step 11)
#   sft-256k  sft_256k_detach.yaml                   (step 12)
# then eval passkey at LENGTHS. The data is the recipe's: run scripts/passkey_recipe.sh (or its data
# part) first. Re-running resumes or skips finished stages. Prints the wall-clock time of each stage.
# Usage: scripts/passkey_variant.sh NAME [OVERRIDE...]   e.g. scripts/passkey_variant.sh seg512 model.segment_len=512
#   (no override: the same stage path with the recipe's settings)
#   (env: THREADS=0 for all cores, TRIALS=1, LENGTHS=32k,128k,1m; INFINI_TORCH=pip or INFINI for another build;
#    LAST=sft-4k stops after that stage (a run suffix above) and evaluates its model)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: $0 NAME [OVERRIDE...] (e.g. seg512 model.segment_len=512)" >&2; exit 2; }
NAME=$1; shift
. scripts/flavour.sh
INFINI=${INFINI:-$BUILD_DIR/infini}  # INFINI_TORCH=pip: the torch 2.x build (build-torch2/)
W=data/work/passkey
THREADS=${THREADS:-0}
TRIALS=${TRIALS:-1}
LENGTHS=${LENGTHS:-32k,128k,1m}
LAST=${LAST:-sft-256k}
case $LAST in pretrain|retrieval|sft-256|sft-1k|sft-4k|sft-4kb|sft-32k|sft-64k|sft-256k) ;;
  *) echo "error: LAST=$LAST is not a stage (pretrain retrieval sft-256 sft-1k sft-4k sft-4kb sft-32k sft-64k sft-256k)" >&2; exit 2 ;;
esac
NEEDED=(docs_192.jsonl text_shards/index.json sft_256.jsonl sft_1k_d1.jsonl sft_4k_d1_mix.jsonl sft_32k_d1_mix.jsonl
        sft_64k_d1_mix.jsonl sft_256k_d1_mix.jsonl)
[[ $LAST == sft-4kb ]] && NEEDED+=(sft_4k_d1_mix2.jsonl sft_val_4k_d1b.jsonl)
for f in "${NEEDED[@]}"; do
  [[ -f $W/$f ]] || { echo "error: $W/$f is missing: run scripts/passkey_recipe.sh first (it makes the data)" >&2; exit 1; }
done
R=runs/passkey-$NAME
prev=""
done_=""
stage() {  # label run-suffix config [override...]: one stage from the previous one, until LAST
  [[ -n $done_ ]] && return
  local label=$1 dir=$R-$2 config=$3 t0=$SECONDS; [[ $2 == "$LAST" ]] && done_=1; shift 3
  local init=(); [[ -n $prev ]] && init=("init_from=$prev")
  $INFINI train "configs/passkey/$config" run.threads="$THREADS" run.dir="$dir" "${init[@]}" "$@" "${OVERRIDES[@]}"
  echo "== $NAME $label: $((SECONDS - t0)) s"
  prev=$dir
}
OVERRIDES=("$@")
stage "pretrain" pretrain pretrain.yaml
stage "passkey documents" retrieval retrieval.yaml
stage "sft 256 tokens" sft-256 sft_256.yaml
stage "sft 1K tokens" sft-1k sft_1k_d1.yaml
stage "sft 4K tokens" sft-4k sft_4k_d1.yaml
[[ $LAST == sft-4kb ]] && stage "sft 4K tokens, segment boundaries" sft-4kb sft_4k_d1b.yaml
stage "sft 32K tokens, detached" sft-32k sft_32k_d1.yaml model.memory.gradient=detach
stage "sft 64K tokens, detached, 4 a step" sft-64k sft_64k_detach_acc4.yaml
stage "sft 256K tokens, detached, 4 a step" sft-256k sft_256k_detach.yaml
t0=$SECONDS
$INFINI eval passkey --checkpoint "$prev" --chat --precision auto --digits 1 --lengths "$LENGTHS" --depths 0,0.5,1 \
  --trials "$TRIALS" --threads "$THREADS" --out "$prev/passkey.json"
echo "== $NAME eval passkey: $((SECONDS - t0)) s"
