#!/usr/bin/env bash
# The main job: set up, then run the demo pipeline stage by stage on the default corpora
# (data -> tokenizer -> shards -> pretrain -> long-document perplexity -> SFT -> reward model ->
# PPO -> passkey model -> passkey retrieval), and print a summary of what each stage achieved on
# held-out data, next to what it is compared with, and the time each stage took. Re-running
# resumes unfinished stages and skips finished ones. About 20 minutes on 2 cores (set-up and build
# excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/flavour.sh
INFINI=${INFINI:-$BUILD_DIR/infini}
W=data/work/demo
mkdir -p "$W" runs
TIMES=runs/demo-times.tsv
: > "$TIMES"
stage() { echo; echo "==== $* ===="; }
timed() {  # name command...: runs it, appends "name<TAB>seconds" to $TIMES
  local name=$1 t0=$SECONDS; shift
  "$@"
  printf '%s\t%s\n' "$name" "$((SECONDS - t0))" >> "$TIMES"
}

stage "infini --version"
$INFINI --version

data() {
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

  # Two tasks whose answers can be checked: reverse and sort three words. Held-out prompts (the
  # *_val files) are removed from every training file, so every figure below is on unseen prompts.
  # The records are drawn from fixed seeds: making them again gives the same files.
  stage "task records: SFT, preference pairs, PPO prompts (reverse and sort three words)"
  local t k held
  for t in reverse sort; do
    for k in sft preference prompts; do
      $INFINI data synth --task $t --kind $k --items 3 --count 3000 --seed 11 --out "$W/${k}_$t.jsonl" > /dev/null
      $INFINI data synth --task $t --kind $k --items 3 --count 200 --seed 12 --out "$W/${k}_${t}_val.jsonl" > /dev/null
    done
  done
  held=$(mktemp)
  grep -oh '"prompt":"[^"]*"' "$W"/*_val.jsonl | sort -u > "$held"
  for t in reverse sort; do
    for k in sft preference prompts; do
      grep -vFf "$held" "$W/${k}_$t.jsonl" > "$W/${k}_$t.tmp" || true
      mv "$W/${k}_$t.tmp" "$W/${k}_$t.jsonl"
    done
  done
  rm -f "$held"
  for k in sft preference prompts; do
    cat "$W/${k}_reverse.jsonl" "$W/${k}_sort.jsonl" > "$W/${k}_tasks.jsonl"
    cat "$W/${k}_reverse_val.jsonl" "$W/${k}_sort_val.jsonl" > "$W/${k}_tasks_val.jsonl"
  done
  echo "$(wc -l < "$W/sft_tasks.jsonl") SFT records, $(wc -l < "$W/preference_tasks.jsonl") pairs," \
    "$(wc -l < "$W/prompts_tasks.jsonl") prompts; held out: 200 of each per task"

  # Passkey records for the passkey model: prompts of 220-258 tokens (the last four end 0-6 tokens
  # before a segment boundary once the chat template is added), single-digit keys at random depths.
  stage "passkey records (8-9 segments of 32 tokens)"
  if [ ! -f "$W/passkey_val.jsonl" ]; then
    local L files=()
    for L in 220 230 240 250 252 254 256 258; do
      $INFINI data synth --task passkey --kind sft --tokenizer "$W/tokenizer.model" --length $L --digits 1 \
        --count 600 --seed $((L + 1000)) --out "$W/passkey_$L.jsonl" > /dev/null
      files+=("$W/passkey_$L.jsonl")
    done
    cat "${files[@]}" > "$W/passkey_train.jsonl"
    rm -f "${files[@]}"
    $INFINI data synth --task passkey --kind sft --tokenizer "$W/tokenizer.model" --length 256 --digits 1 \
      --count 32 --seed 98 --out "$W/passkey_val.jsonl" > /dev/null
  fi
  echo "$(wc -l < "$W/passkey_train.jsonl") passkey records, $(wc -l < "$W/passkey_val.jsonl") held out"
}
timed "data (corpora, tokenizer, shards, records)" data

stage "pretrain (configs/demo/pretrain.yaml)"
timed "pretrain" $INFINI train configs/demo/pretrain.yaml

# Long-document perplexity on one novel: the first 32768 tokens of austen.txt lie inside its first
# book (Sense and Sensibility, about 670 KB). --compare also reads it with the memory reset per
# segment (each segment of 64 tokens sees only itself), on the same tokens.
stage "long-document perplexity, with and without memory"
timed "eval ppl (2 x 32K tokens)" $INFINI eval ppl --checkpoint runs/demo-pretrain --text data/corpora/austen.txt \
  --max-tokens 32768 --compare --out runs/demo-pretrain/eval_ppl.json

stage "SFT (configs/demo/sft.yaml)"
timed "SFT" $INFINI train configs/demo/sft.yaml
# True accuracy of the finished SFT model on the held-out prompts (PPO starts from its step 250).
$INFINI eval accuracy --checkpoint runs/demo-sft --data "$W/prompts_reverse_val.jsonl" --data "$W/prompts_sort_val.jsonl" \
  --max-prompts 200 --seq-len 96 --batch-size 64 --out runs/demo-sft/eval_accuracy.json | tail -n 1

stage "reward model (configs/demo/reward.yaml)"
timed "reward model" $INFINI train configs/demo/reward.yaml
for t in tasks reverse sort; do
  $INFINI eval reward --checkpoint runs/demo-reward --data "$W/preference_${t}_val.jsonl" \
    --out "runs/demo-reward/eval_reward_$t.json" | tail -n 1
done

stage "PPO (configs/demo/ppo.yaml)"
if [[ ! -d runs/demo-sft/checkpoints/step_00000250 ]]; then  # an SFT run from before PPO started there
  echo "error: runs/demo-sft/checkpoints/step_00000250 (PPO's start) is missing: remove runs/demo-sft and runs/demo-ppo, then run again" >&2
  exit 1
fi
timed "PPO" $INFINI train configs/demo/ppo.yaml

# Passkey retrieval: a small model of its own trained on ~256-token passkey records, evaluated
# far beyond them (up to 1024 segments), then the same weights with the memory reset per segment.
stage "passkey model (configs/demo/passkey.yaml)"
timed "passkey model" $INFINI train configs/demo/passkey.yaml
passkey_eval() {  # the same prompts (seed 0) with the memory, then with it reset per segment
  local E=($INFINI eval passkey --checkpoint runs/demo-passkey --chat --digits 1 --lengths 256,2k,32k
           --depths 0,0.25,0.5,0.75,1 --trials 4 --threads 0)
  "${E[@]}" --out runs/demo-passkey/passkey.json | tail -n 6
  "${E[@]}" --no-memory --out runs/demo-passkey/passkey_no_memory.json | tail -n 6
}
timed "eval passkey (2 x 60 prompts, to 32K)" passkey_eval

stage "reports"
REPORTS=()
for r in runs/demo-pretrain runs/demo-sft runs/demo-reward runs/demo-ppo runs/demo-passkey; do
  $INFINI report "$r" && REPORTS+=("$r/report.html") || echo "(report of $r failed)"
done

if [ -x /usr/bin/python3 ]; then
  stage "plots"
  for r in runs/demo-pretrain runs/demo-sft runs/demo-reward; do
    /usr/bin/python3 scripts/plot_metrics.py "$r/metrics.jsonl" "$r/metrics.png" || echo "(plot of $r failed)"
  done
fi

stage "summary"
/usr/bin/python3 scripts/demo_summary.py "$TIMES"
cat <<TXT

  tokenizer          $W/tokenizer.model
  token shards       $W/shards/
  pretraining run    runs/demo-pretrain/  (config.yaml, metrics.jsonl, metrics.png, checkpoints/, eval_ppl.json)
  SFT run            runs/demo-sft/
  reward model       runs/demo-reward/  (eval_reward_*.json)
  PPO run            runs/demo-ppo/     (checkpoints/step_N/actor)
  passkey model      runs/demo-passkey/ (passkey.json, passkey_no_memory.json)
  reports            ${REPORTS[*]:-none}  (open in a browser; tensorboard --logdir runs/ reads the same metrics)
  try:               $INFINI generate --checkpoint runs/demo-sft --prompt \$'### User:\\nSort these words alphabetically: tiger apple stone\\n\\n### Assistant:\\n' --max-new-tokens 16
TXT
