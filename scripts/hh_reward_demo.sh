#!/usr/bin/env bash
# A reward model on real preference data: SFT on Alpaca-style records, then a reward model on
# HH-RLHF helpful-base (all but the last 354 pairs), evaluated on the held-out helpful-base pairs
# and on harmless-base. Needs the demo tokenizer and pretrained model (scripts/run.sh).
# Usage: scripts/hh_reward_demo.sh [DATA_DIR]   (DATA_DIR holds sft/alpaca_en_demo.json and
#        preference/{helpful,harmless}-base-test.jsonl.gz; default ../shared/data; env THREADS=0)
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-../shared/data}
INFINI=build/infini
W=data/work/hh
THREADS=${THREADS:-0}
for f in "$D/sft/alpaca_en_demo.json" "$D/preference/helpful-base-test.jsonl.gz" "$D/preference/harmless-base-test.jsonl.gz"; do
  [[ -f $f ]] || { echo "error: $f not found (give the data directory as the first argument)" >&2; exit 1; }
done
[[ -x $INFINI && -d runs/demo-pretrain ]] || { echo "error: run scripts/run.sh first" >&2; exit 1; }
timed() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "== $name: $((SECONDS - t0)) s"; }
mkdir -p $W
if [[ ! -f $W/helpful_heldout.jsonl ]]; then
  gzip -dc "$D/preference/helpful-base-test.jsonl.gz" > $W/helpful_all.jsonl
  n=$(wc -l < $W/helpful_all.jsonl)
  head -n $((n - 354)) $W/helpful_all.jsonl > $W/helpful_train.jsonl
  tail -n 354 $W/helpful_all.jsonl > $W/helpful_heldout.jsonl
  rm $W/helpful_all.jsonl
fi
timed "sft (alpaca)" $INFINI train configs/hh/sft.yaml "data.train=[$D/sft/alpaca_en_demo.json]" run.threads=$THREADS
timed "reward (helpful-base)" $INFINI train configs/hh/reward.yaml run.threads=$THREADS
for split in helpful_heldout harmless; do
  data=$W/helpful_heldout.jsonl; [[ $split == harmless ]] && data=$D/preference/harmless-base-test.jsonl.gz
  timed "eval reward ($split)" $INFINI eval reward --checkpoint runs/hh-reward --data "$data" --seq-len 384 \
    --threads "$THREADS" --out runs/hh-reward/eval_$split.json
done
