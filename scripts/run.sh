#!/usr/bin/env bash
# The main job: set up, then run the demo pipeline stage by stage on the default corpora
# (get data -> tokenizer -> shards -> pretrain -> SFT), and print a summary of what it made.
# Re-running resumes unfinished stages and skips finished ones.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/flavour.sh
INFINI=${INFINI:-$BUILD_DIR/infini}
W=data/work/demo
mkdir -p "$W"
stage() { echo; echo "==== $* ===="; }

stage "infini --version"
$INFINI --version

stage "default corpora"
scripts/get_data.sh
CORPORA=(data/corpora/kjv.txt data/corpora/austen.txt)

stage "tokenizer (sentencepiece BPE, 4096 pieces)"
if [ ! -f "$W/tokenizer.model" ]; then
  $INFINI tokenizer train --input "${CORPORA[@]}" --vocab-size 4096 --out "$W/tokenizer"
else
  echo "exists: $W/tokenizer.model"
fi

stage "token shards"
if [ ! -f "$W/shards/index.json" ]; then
  $INFINI data prepare --tokenizer "$W/tokenizer.model" --input "${CORPORA[@]}" --out "$W/shards" --val-fraction 0.02
else
  echo "exists: $W/shards"
fi

stage "SFT records (verifiable tasks + passkey)"
if [ ! -f "$W/sft_passkey.jsonl" ]; then
  : > "$W/sft_tasks.jsonl"
  for task in add reverse sort; do
    $INFINI data synth --task $task --kind sft --count 2000 --seed 1 --out "$W/sft_$task.jsonl"
    $INFINI data synth --task $task --kind sft --count 100 --seed 2 --out "$W/sft_${task}_val.jsonl"
  done
  cat "$W"/sft_add.jsonl "$W"/sft_reverse.jsonl "$W"/sft_sort.jsonl > "$W/sft_tasks.jsonl"
  cat "$W"/sft_add_val.jsonl "$W"/sft_reverse_val.jsonl "$W"/sft_sort_val.jsonl > "$W/sft_tasks_val.jsonl"
  $INFINI data synth --task passkey --kind sft --count 400 --seed 3 --tokenizer "$W/tokenizer.model" \
    --length 500 --out "$W/sft_passkey.jsonl"
else
  echo "exists: $W/sft_*.jsonl"
fi

stage "preference pairs and PPO prompts (verifiable tasks)"
if [ ! -f "$W/prompts_tasks_val.jsonl" ]; then
  for t in add reverse sort; do
    $INFINI data synth --task $t --kind preference --count 2000 --seed 21 --out "$W/pref_$t.jsonl"
    $INFINI data synth --task $t --kind preference --count 100 --seed 22 --out "$W/pref_${t}_val.jsonl"
    $INFINI data synth --task $t --kind prompts --count 1000 --seed 23 --out "$W/prompts_$t.jsonl"
    $INFINI data synth --task $t --kind prompts --count 50 --seed 24 --out "$W/prompts_${t}_val.jsonl"
  done
  cat "$W"/pref_{add,reverse,sort}.jsonl > "$W/pref_tasks.jsonl"
  cat "$W"/pref_{add,reverse,sort}_val.jsonl > "$W/pref_tasks_val.jsonl"
  cat "$W"/prompts_{add,reverse,sort}.jsonl > "$W/prompts_tasks.jsonl"
  cat "$W"/prompts_{add,reverse,sort}_val.jsonl > "$W/prompts_tasks_val.jsonl"
else
  echo "exists: $W/pref_*.jsonl, $W/prompts_*.jsonl"
fi

stage "pretrain (configs/demo/pretrain.yaml)"
$INFINI train configs/demo/pretrain.yaml

stage "SFT (configs/demo/sft.yaml)"
$INFINI train configs/demo/sft.yaml

stage "reward model (configs/demo/reward.yaml)"
$INFINI train configs/demo/reward.yaml

stage "PPO (configs/demo/ppo.yaml)"
$INFINI train configs/demo/ppo.yaml

stage "evaluation"
$INFINI eval reward --checkpoint runs/demo-reward --data "$W/pref_tasks_val.jsonl" --out runs/demo-reward/eval_reward.json
$INFINI eval passkey --checkpoint runs/demo-sft --lengths 1k,4k --depths 0,0.5,1 --trials 2 --chat \
  --out runs/demo-sft/eval_passkey.json
# Long-document perplexity on one novel: the first 32768 tokens of austen.txt lie inside its first
# book (Sense and Sensibility, about 670 KB).
$INFINI eval ppl --checkpoint runs/demo-pretrain --text data/corpora/austen.txt --max-tokens 32768 --compare \
  --out runs/demo-pretrain/eval_ppl.json

stage "reports"
REPORTS=()
for r in runs/demo-pretrain runs/demo-sft runs/demo-reward runs/demo-ppo; do
  $INFINI report "$r" && REPORTS+=("$r/report.html") || echo "(report of $r failed)"
done

if [ -x /usr/bin/python3 ]; then
  stage "plots"
  for r in runs/demo-pretrain runs/demo-sft runs/demo-reward; do
    /usr/bin/python3 scripts/plot_metrics.py "$r/metrics.jsonl" "$r/metrics.png" || echo "(plot of $r failed)"
  done
fi

stage "summary"
/usr/bin/python3 - <<'PY'
import json, os
def last(path, kind, key):
    v = None
    if os.path.exists(path):
        for line in open(path):
            try: r = json.loads(line)
            except Exception: continue
            if r.get("kind") == kind and key in r: v = r[key]
    return v
def first(path, key):
    if os.path.exists(path):
        for line in open(path):
            try: r = json.loads(line)
            except Exception: continue
            if key in r: return r[key]
    return None
def jget(path, *keys):
    try:
        v = json.load(open(path))
        for k in keys: v = v[k]
        return v
    except Exception:
        return None
ppo = "runs/demo-ppo/metrics.jsonl"
rows = [
  ("pretrain val perplexity", last("runs/demo-pretrain/metrics.jsonl", "eval", "val_ppl")),
  ("SFT val loss (response tokens)", last("runs/demo-sft/metrics.jsonl", "eval", "val_loss")),
  ("reward model pair accuracy (val)", last("runs/demo-reward/metrics.jsonl", "eval", "val_accuracy")),
  ("policy true accuracy before PPO", first(ppo, "true_accuracy")),
  ("policy true accuracy after PPO", last(ppo, "eval", "true_accuracy")),
  ("final KL to reference", last(ppo, "ppo", "kl")),
  ("passkey accuracy (1K-4K, SFT)", jget("runs/demo-sft/eval_passkey.json", "accuracy")),
]
for name, v in rows:
    print(f"  {name:34s} {v:.4f}" if isinstance(v, float) else f"  {name:34s} {v}")
PY
cat <<TXT
  tokenizer          $W/tokenizer.model
  token shards       $W/shards/
  pretraining run    runs/demo-pretrain/  (config.yaml, metrics.jsonl, metrics.png, checkpoints/)
  SFT run            runs/demo-sft/
  reward model       runs/demo-reward/  (eval_reward.json)
  PPO run            runs/demo-ppo/     (checkpoints/step_N/actor, critic)
  reports            ${REPORTS[*]:-none}  (open in a browser; tensorboard --logdir runs/ reads the same metrics)
  try:               $INFINI generate --checkpoint runs/demo-sft --prompt \$'### User:\\nWhat is 12 + 30?\\n\\n### Assistant:\\n' --max-new-tokens 16
TXT
