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
synth() {  # task kind count seed extra... -> stdout
  local f; f=$(mktemp); $INFINI data synth --task "$1" --kind "$2" --count "$3" --seed "$4" "${@:5}" --out "$f" >/dev/null
  cat "$f"; rm -f "$f"
}
if [[ ! -f $W/prompts_val_sort.jsonl ]]; then
  for kind in sft preference prompts; do
    out=$kind; [[ $kind == preference ]] && out=pref
    { synth add $kind 3000 11 --digits 2; synth reverse $kind 3000 12 --items 3; synth sort $kind 3000 13 --items 3; } > $W/$out.jsonl
    synth add $kind 100 21 --digits 2 > $W/${out}_val_add.jsonl
    synth reverse $kind 100 22 --items 3 > $W/${out}_val_reverse.jsonl
    synth sort $kind 100 23 --items 3 > $W/${out}_val_sort.jsonl
    cat $W/${out}_val_{add,reverse,sort}.jsonl > $W/${out}_val.jsonl
  done
fi
[[ -f $W/prompts_add.jsonl ]] || grep '"What is ' $W/prompts.jsonl > $W/prompts_add.jsonl
# The reward model's data: 11,900 more addition SFT records for its trunk and 14,851 addition pairs
# (plus the reverse/sort pairs above), held-out prompts removed.
if [[ ! -f $W/pref_big.jsonl ]]; then
  grep -o '"prompt":"[^"]*"' $W/prompts_val_add.jsonl > $W/held_out_add.txt
  { cat $W/sft.jsonl; synth add sft 12000 41 --digits 2 | grep -vFf $W/held_out_add.txt; } > $W/sft_big.jsonl
  { synth add preference 15000 31 --digits 2 | grep -vFf $W/held_out_add.txt
    grep -v '"prompt":"What is ' $W/pref.jsonl; } > $W/pref_big.jsonl
fi
# Addition prompts that no model here trains on (in none of the SFT, pair or prompt files): the
# ~500 left of the 10,000 possible once all the training files are drawn.
[[ -f $W/prompts_unseen_add.jsonl ]] || synth add prompts 60000 51 --digits 2 | awk '!seen[$0]++' |
  grep -vFf <(grep -oh '"prompt":"What is [^"]*"' $W/{sft_big,pref_big,prompts,prompts_val_add}.jsonl) \
  > $W/prompts_unseen_add.jsonl
# Fresh pairs for a last check of the reward models (the pref_val pairs also chose between runs):
# 200 addition pairs on the unseen prompts, 200 reverse, 200 sort.
if [[ ! -f $W/pref_test.jsonl ]]; then
  synth add preference 60000 61 --digits 2 | grep -Ff <(grep -o '"prompt":"[^"]*"' $W/prompts_unseen_add.jsonl) |
    awk -F'"prompt":' 'n < 200 && !seen[$2]++ { print; n++ }' > $W/pref_test_add.jsonl
  synth reverse preference 200 62 --items 3 > $W/pref_test_reverse.jsonl
  synth sort preference 200 63 --items 3 > $W/pref_test_sort.jsonl
  cat $W/pref_test_{add,reverse,sort}.jsonl > $W/pref_test.jsonl
fi
# The addition pairs whose wrong answer is the sum +-1 (units digit) and +-10 (tens digit): of the
# training pairs for the phases of the deeper reward model, of the held-out and fresh pairs to
# measure each kind of error on its own.
split_by_error() {  # in.jsonl difference -> the addition pairs whose answers differ by it
  /usr/bin/python3 -c '
import json, re, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if re.match(r"What is \d+ \+ \d+\?", r["prompt"]) and abs(int(r["rejected"]) - int(r["chosen"])) == int(sys.argv[2]):
        sys.stdout.write(line)' "$1" "$2"
}
[[ -f $W/pref_revsort.jsonl ]] || grep -v '"prompt":"What is ' $W/pref_big.jsonl > $W/pref_revsort.jsonl
for d in 1:units 10:tens; do
  for src in big:"" val_add:_val test_add:_test; do
    out=$W/pref${src#*:}_${d#*:}.jsonl
    [[ -f $out ]] || split_by_error $W/pref_${src%%:*}.jsonl ${d%%:*} > $out
  done
done
timed "sft" $INFINI train configs/rlhf/sft.yaml run.threads=$THREADS
timed "reward" $INFINI train configs/rlhf/reward.yaml run.threads=$THREADS
# The deeper reward model: the SFT-big trunk (it adds) frozen under two new blocks, units pairs
# first, then all pairs (docs/rlhf.md).
timed "sft big (reward trunk)" $INFINI train configs/rlhf/sft_big.yaml run.threads=$THREADS
timed "reward deep, units pairs" $INFINI train configs/rlhf/reward_deep_units.yaml run.threads=$THREADS
timed "reward deep, all pairs" $INFINI train configs/rlhf/reward_deep.yaml run.threads=$THREADS
timed "reward deep, tens pairs 2x" $INFINI train configs/rlhf/reward_deep.yaml run.dir=runs/rlhf-reward-deep-tens2 \
  init_from=runs/rlhf-reward-deep-all data.train=[$W/pref_big.jsonl,$W/pref_tens.jsonl] run.seed=3 \
  train.max_steps=2000 run.threads=$THREADS
timed "reward deep, tens pairs 4x" $INFINI train configs/rlhf/reward_deep.yaml run.dir=runs/rlhf-reward-deep-tens4 \
  init_from=runs/rlhf-reward-deep-tens2 data.train=[$W/pref_big.jsonl$(printf ",$W/pref_tens.jsonl%.0s" 1 2 3)] \
  run.seed=5 train.max_steps=1500 train.eval_every=500 checkpoint.every=500 run.threads=$THREADS
# (A runs/rlhf-reward-deep made before phases 5-7 existed is phase 4: rename it to
# runs/rlhf-reward-deep-tens4 first, or the last phase below finds it finished and skips.)
# The tens check is learned like the units one was: on its pairs alone, for long enough (it forgets
# the rest meanwhile), then back on all pairs with the tens, units and reverse/sort pairs repeated.
timed "reward deep, tens pairs only" $INFINI train configs/rlhf/reward_deep.yaml run.dir=runs/rlhf-reward-deep-tensonly \
  init_from=runs/rlhf-reward-deep-tens4 data.train=[$W/pref_tens.jsonl] data.val=[$W/pref_val_tens.jsonl] \
  optim.lr=5e-4 schedule.min_lr=5e-5 run.seed=4 train.max_steps=3000 train.eval_every=250 run.threads=$THREADS
timed "reward deep, all pairs + tens 2x" $INFINI train configs/rlhf/reward_deep.yaml run.dir=runs/rlhf-reward-deep-mix1 \
  init_from=runs/rlhf-reward-deep-tensonly data.train=[$W/pref_big.jsonl,$W/pref_tens.jsonl,$W/pref_tens.jsonl] \
  optim.lr=2e-4 schedule.min_lr=2e-5 run.seed=6 train.max_steps=1500 train.eval_every=250 run.threads=$THREADS
timed "reward deep, all pairs balanced" $INFINI train configs/rlhf/reward_deep.yaml run.dir=runs/rlhf-reward-deep \
  init_from=runs/rlhf-reward-deep-mix1 \
  data.train=[$W/pref_big.jsonl$(printf ",$W/pref_%s.jsonl" tens tens units units revsort revsort)] \
  optim.lr=1e-4 schedule.min_lr=1e-5 run.seed=9 train.max_steps=1500 train.eval_every=500 run.threads=$THREADS
for rm in rlhf-reward rlhf-reward-deep; do
  timed "eval reward $rm (held-out pairs)" $INFINI eval reward --checkpoint runs/$rm --data $W/pref_val.jsonl \
    --threads "$THREADS" --out runs/$rm/eval_reward.json
  for t in add reverse sort units tens; do
    $INFINI eval reward --checkpoint runs/$rm --data $W/pref_val_$t.jsonl --threads "$THREADS" \
      --out runs/$rm/eval_reward_$t.json > /dev/null
  done
done
for t in "" _add _reverse _sort _units _tens; do
  $INFINI eval reward --checkpoint runs/rlhf-reward-deep --data $W/pref_test$t.jsonl --threads "$THREADS" \
    --out runs/rlhf-reward-deep/eval_reward_fresh$t.json > /dev/null
done
# PPO twice from the same SFT model: rewarded by the reward model (RLHF proper), and by the rule
# (exact match with the reference answer). True accuracy is logged for both.
timed "ppo (reward model)" $INFINI train configs/rlhf/ppo.yaml run.threads=$THREADS
timed "ppo (rule reward)" $INFINI train configs/rlhf/ppo.yaml run.dir=runs/rlhf-ppo-rule ppo.reward_source=rule \
  run.threads=$THREADS
# The rule reward with 8 samples per prompt and the leave-one-out baseline, on the addition prompts.
timed "ppo (rule reward, rloo)" $INFINI train configs/rlhf/ppo_rloo.yaml run.threads=$THREADS
# The same settings against the deeper reward model.
timed "ppo (deep reward model, rloo)" $INFINI train configs/rlhf/ppo_rloo.yaml run.dir=runs/rlhf-ppo-rloo-rm \
  ppo.reward_source=model ppo.reward_model=runs/rlhf-reward-deep ppo.reward_clip=5 run.threads=$THREADS
# Every policy on the ~500 addition prompts no model trained on (the stage's evaluation before its
# first rollout, with init_from the policy).
actor() { echo "runs/$1/checkpoints/$(cat runs/$1/checkpoints/latest)/actor"; }
for policy in runs/rlhf-sft "$(actor rlhf-ppo-rloo)" "$(actor rlhf-ppo-rloo-rm)"; do
  rm -rf runs/rlhf-unseen-eval
  acc=$($INFINI train configs/rlhf/ppo_rloo.yaml run.dir=runs/rlhf-unseen-eval init_from=$policy train.max_steps=1 \
    data.val=[$W/prompts_unseen_add.jsonl] ppo.eval_prompts=1000 run.threads=$THREADS 2>&1 |
    grep -o 'eval rollout 0: true accuracy [0-9.]*' | grep -o '[0-9.]*$')
  echo "unseen addition prompts: $policy $acc"
done
rm -rf runs/rlhf-unseen-eval
/usr/bin/python3 - <<'PY'
import json
for run in ("runs/rlhf-reward", "runs/rlhf-reward-deep"):
    rm = json.load(open(run + "/eval_reward.json"))
    print("%s, held-out pairs: accuracy %.3f, margin %.3f (%s)" % (
        run, rm["accuracy"], rm.get("mean_margin", float("nan")),
        ", ".join("%s %.2f" % (t, json.load(open(run + "/eval_reward_%s.json" % t))["accuracy"])
                  for t in ("add", "reverse", "sort", "units", "tens"))))
fresh = lambda t: json.load(open("runs/rlhf-reward-deep/eval_reward_fresh%s.json" % t))["accuracy"]
print("runs/rlhf-reward-deep, fresh pairs: accuracy %.3f (%s)" % (
    fresh(""), ", ".join("%s %.2f" % (t, fresh("_" + t)) for t in ("add", "reverse", "sort", "units", "tens"))))
for run in ("runs/rlhf-ppo", "runs/rlhf-ppo-rule", "runs/rlhf-ppo-rloo", "runs/rlhf-ppo-rloo-rm"):
    recs = [json.loads(l) for l in open(run + "/metrics.jsonl")]
    ev = [r for r in recs if r.get("kind") == "eval"]
    pp = [r for r in recs if r.get("kind") == "ppo"]
    print(run)
    for r in ev:
        per = "".join(" %s %.2f" % (k.replace("prompts_val_", ""), v) for k, v in r.get("true_accuracy_per_file", {}).items())
        print("  rollout %3d: true accuracy %.3f (%s), reward-model score %.3f" % (
            r["step"], r["true_accuracy"], per.strip(), r.get("rm_score", float("nan"))))
    if pp:
        t = [sum(r[k] for r in pp) for k in ("generate_s", "score_s", "update_s")]
        print("  final KL %.3f (max %.3f); time: generation %.0f%%, scoring %.0f%%, updates %.0f%%" % (
            pp[-1]["kl"], max(r["kl"] for r in pp), *(100 * x / sum(t) for x in t)))
PY
