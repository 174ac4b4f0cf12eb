#!/usr/bin/env bash
# The RLHF demonstration on verifiable tasks (2-digit addition, reversing and sorting 3 words):
# SFT -> reward model -> its held-out pair accuracy -> PPO, with the policy's true accuracy on
# held-out prompts before and after PPO. Needs the demo tokenizer and pretrained model
# (scripts/run.sh makes them). Re-running resumes or skips finished stages.
# Usage: scripts/rlhf_demo.sh   (env: THREADS=0 for all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
INFINI=build/infini
W=data/work/rlhf
THREADS=${THREADS:-0}
[[ -x $INFINI && -d runs/demo-pretrain ]] || { echo "error: run scripts/run.sh first (needs $INFINI and runs/demo-pretrain)" >&2; exit 1; }
timed() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "== $name: $((SECONDS - t0)) s"; }

mkdir -p $W
if [[ ! -f $W/prompts_val.jsonl ]]; then
  synth() {  # task kind count seed extra... -> stdout
    local f; f=$(mktemp); $INFINI data synth --task "$1" --kind "$2" --count "$3" --seed "$4" "${@:5}" --out "$f" >/dev/null
    cat "$f"; rm -f "$f"
  }
  for kind in sft preference prompts; do
    out=$kind; [[ $kind == preference ]] && out=pref
    { synth add $kind 3000 11 --digits 2; synth reverse $kind 3000 12 --items 3; synth sort $kind 3000 13 --items 3; } > $W/$out.jsonl
    { synth add $kind 100 21 --digits 2; synth reverse $kind 100 22 --items 3; synth sort $kind 100 23 --items 3; } > $W/${out}_val.jsonl
  done
fi
timed "sft" $INFINI train configs/rlhf/sft.yaml run.threads=$THREADS
timed "reward" $INFINI train configs/rlhf/reward.yaml run.threads=$THREADS
timed "eval reward (held-out pairs)" $INFINI eval reward --checkpoint runs/rlhf-reward --data $W/pref_val.jsonl \
  --threads "$THREADS" --out runs/rlhf-reward/eval_reward.json
timed "ppo" $INFINI train configs/rlhf/ppo.yaml run.threads=$THREADS
/usr/bin/python3 - <<'PY'
import json
ev = [r for r in map(json.loads, open("runs/rlhf-ppo/metrics.jsonl")) if r.get("kind") == "eval"]
pp = [r for r in map(json.loads, open("runs/rlhf-ppo/metrics.jsonl")) if r.get("kind") == "ppo"]
rm = json.load(open("runs/rlhf-reward/eval_reward.json"))
print("reward model, held-out pairs: accuracy %.3f, margin %.3f" % (rm["accuracy"], rm.get("mean_margin", float("nan"))))
for r in ev:
    print("rollout %3d: true accuracy %.3f, reward-model score %.3f" % (r["step"], r["true_accuracy"], r.get("rm_score", float("nan"))))
if pp:
    print("final KL %.3f; generation %.0f%% of PPO time" % (pp[-1]["kl"], 100 * sum(r["generate_s"] for r in pp) /
          sum(r["generate_s"] + r["score_s"] + r["update_s"] for r in pp)))
PY
