#!/usr/bin/env bash
# The post-training demonstration on the main job's verifiable tasks (reverse and sort three
# words): one SFT policy stopped in the middle of learning them (step 250 of 400), then DPO, GRPO,
# PPO (RLOO) and PPO with a critic (GAE) each started from that same checkpoint, and every policy's
# true accuracy (`infini eval accuracy`: greedy, exact match) on the 200 held-out prompts of each
# task, with the wall time of each run. Needs scripts/run.sh's data, tokenizer and pretrained
# model (runs/demo-pretrain), and for GAE its reward model (runs/demo-reward; skipped without it).
# Re-running resumes an unfinished run and skips finished runs and evaluations.
# Usage: scripts/posttrain_demo.sh   (env: THREADS=0 for all cores; INFINI, BUILD_DIR)
# Figures as run: docs/experiments/2026-12-02-posttrain.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/flavour.sh
INFINI=${INFINI:-$BUILD_DIR/infini}
THREADS=${THREADS:-0}
W=data/work/demo
START=runs/posttrain-sft/checkpoints/step_00000250  # the common starting point
EVAL=runs/posttrain-eval                             # one eval accuracy JSON per policy
TIMES=runs/posttrain-times.tsv                       # name <TAB> seconds of each finished run
for need in "$INFINI" runs/demo-pretrain $W/sft_tasks.jsonl $W/preference_tasks.jsonl $W/prompts_tasks.jsonl \
  $W/prompts_reverse_val.jsonl $W/prompts_sort_val.jsonl; do
  [[ -e $need ]] || { echo "error: $need not found: run scripts/run.sh first" >&2; exit 1; }
done
mkdir -p $EVAL
touch $TIMES

# name command...: runs a stage once; its wall time goes to $TIMES when it finishes (a resumed run
# counts the time of the invocation that finished it).
stage() {
  local name=$1 t0=$SECONDS; shift
  if grep -q "^$name	" $TIMES; then
    echo "== $name: finished ($(grep "^$name	" $TIMES | cut -f2) s), skipped"
    return
  fi
  echo "== $name"
  "$@"
  printf '%s\t%s\n' "$name" "$((SECONDS - t0))" >> $TIMES
}
# name checkpoint: the policy's held-out true accuracy per task, once.
accuracy() {
  [[ -f $EVAL/$1.json ]] && return
  $INFINI eval accuracy --checkpoint "$2" --data $W/prompts_reverse_val.jsonl --data $W/prompts_sort_val.jsonl \
    --max-new-tokens 16 --batch-size 64 --threads "$THREADS" --out $EVAL/$1.json
}
actor() { echo "runs/$1/checkpoints/$(cat runs/$1/checkpoints/latest)/actor"; }  # a ppo run's policy

stage sft $INFINI train configs/posttrain/sft.yaml run.threads=$THREADS
accuracy sft-250 $START
accuracy sft-400 runs/posttrain-sft
stage dpo $INFINI train configs/posttrain/dpo.yaml run.threads=$THREADS
accuracy dpo runs/posttrain-dpo
stage grpo $INFINI train configs/posttrain/grpo.yaml run.threads=$THREADS
accuracy grpo "$(actor posttrain-grpo)"
stage rloo $INFINI train configs/posttrain/rloo.yaml run.threads=$THREADS
accuracy rloo "$(actor posttrain-rloo)"
if [[ -d runs/demo-reward ]]; then
  stage gae $INFINI train configs/posttrain/gae.yaml run.threads=$THREADS
  accuracy gae "$(actor posttrain-gae)"
else
  echo "== gae: skipped (its critic starts from runs/demo-reward: run scripts/run.sh's reward stage first)"
fi

/usr/bin/python3 - "$EVAL" "$TIMES" <<'PY'
import json, os, sys
ev_dir, times_file = sys.argv[1], sys.argv[2]
times = dict(l.rstrip("\n").split("\t") for l in open(times_file) if "\t" in l)
rows = [  # name, method, run, training it had
    ("sft-250", "SFT, 250 of 400 steps (the start)", "runs/posttrain-sft", "250 x 32 records"),
    ("sft-400", "SFT, all 400 steps", "runs/posttrain-sft", "400 x 32 records"),
    ("dpo", "DPO from the start", "runs/posttrain-dpo", None),
    ("grpo", "GRPO from the start", "runs/posttrain-grpo", None),
    ("rloo", "PPO (RLOO) from the start", "runs/posttrain-rloo", None),
    ("gae", "PPO (GAE, critic) from the start", "runs/posttrain-gae", None),
]
def records(run, kind):
    path = os.path.join(run, "metrics.jsonl")
    return [r for r in map(json.loads, open(path)) if r.get("kind") == kind] if os.path.exists(path) else []
print("\n%-36s %-22s %8s %8s %6s %6s %s" % ("policy", "training", "wall s", "reverse", "sort", "both", "KL final (max)"))
for name, method, run, training in rows:
    path = os.path.join(ev_dir, name + ".json")
    if not os.path.exists(path):
        continue
    j = json.load(open(path))
    per = {f["name"]: f["accuracy"] for f in j["files"]}
    ppo = records(run, "ppo")
    kl = "%.3f (%.3f)" % (ppo[-1]["kl"], max(r["kl"] for r in ppo)) if ppo else "-"
    if training is None:
        steps = ppo[-1]["step"] if ppo else max([r["step"] for r in records(run, "train")] or [0])
        training = ("%d rollouts of 16 x 8" % steps) if ppo else ("%d x 16 pairs" % steps)
    wall = times.get(name.split("-")[0], "-") if not name.startswith("sft") else times.get("sft", "-")
    print("%-36s %-22s %8s %8.3f %6.3f %6.3f %s" % (method, training, wall, per.get("prompts_reverse_val", float("nan")),
                                                   per.get("prompts_sort_val", float("nan")), j["accuracy"], kl))
    evs = records(run, "eval") if ppo else []
    if evs:
        print("    held-out during the run: " + ", ".join("%d: %.3f" % (r["step"], r["true_accuracy"]) for r in evs))
print("\n(the SFT run's wall time is all 400 steps; times are of this machine, as shared while it ran)")
PY
