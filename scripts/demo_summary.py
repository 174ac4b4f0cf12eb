#!/usr/bin/env python3
"""The summary of the main job (scripts/run.sh): what each demo stage achieved on held-out data,
next to what it is compared with, and the time each stage took. Reads the run directories the
stages wrote (metrics.jsonl, eval_*.json); prints what is missing instead of failing.
Usage: scripts/demo_summary.py [--runs PREFIX] TIMES.tsv
  TIMES.tsv: the "stage<TAB>seconds" lines run.sh wrote; PREFIX: of the run directories
  (default runs/demo-: runs/demo-pretrain, -sft, -reward, -ppo)."""
import json
import math
import os
import re
import sys

RUNS = "runs/demo-"


def records(path):
    out = []
    if os.path.exists(path):
        for line in open(path):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a torn last line
    return out


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def config_value(run, section, key, default=None):
    """`section: {key: value}` of a run's resolved config.yaml (as infini writes it: two-space
    indents, a comment after each value), as a string; section "" for a top-level key."""
    try:
        text = open(RUNS + run + "/config.yaml").read()
    except OSError:
        return default
    if not section:  # a top-level key
        v = re.search(r"^%s: ([^#\n]*?)\s*(#.*)?$" % key, text, re.M)
        return v.group(1) if v else default
    m = re.search(r"^%s:\n((?:[ ].*\n)*)" % section, text, re.M)
    v = m and re.search(r"^  %s: ([^#\n]*?)\s*(#.*)?$" % key, m.group(1), re.M)
    return v.group(1) if v else default


def fmt(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def times(path):
    print("time per stage (this invocation; a stage finished earlier takes seconds):")
    total = 0
    for line in open(path) if os.path.exists(path) else []:
        name, _, s = line.rstrip("\n").partition("\t")
        total += int(s)
        print(f"  {name:44s} {int(s) // 60:3d} min {int(s) % 60:02d} s")
    print(f"  {'total':44s} {total // 60:3d} min {total % 60:02d} s")


def pretraining():
    ev = [r for r in records(RUNS + "pretrain/metrics.jsonl") if r.get("kind") == "eval"]
    ppl = ev[-1].get("val_ppl") if ev else None
    vocab = config_value("pretrain", "model", "vocab_size", "?")
    print(f"\npretraining: held-out perplexity {fmt(ppl, 1)} (a uniform guess over the {vocab} pieces: {vocab})")
    j = load(RUNS + "pretrain/eval_ppl.json")
    if not j:
        print(f"  long-document perplexity: {RUNS}pretrain/eval_ppl.json missing")
        return
    w, n = j["with_memory"], j["no_memory"]
    print(f"long-document perplexity, {os.path.basename(j['text'])}, first {w['tokens']} tokens "
          "(memory vs the same weights with the memory reset per segment):")
    print(f"  {'tokens':10s} {'with memory':>12s} {'memory reset':>13s} {'gain':>7s}")
    rows = [(b["range"], b["ppl"], c["ppl"]) for b, c in zip(w["buckets"], n["buckets"]) if b["targets"]]
    rows.append(("all", w["ppl"], n["ppl"]))
    for name, a, b in rows:
        print(f"  {name:10s} {a:12.1f} {b:13.1f} {100 * (1 - a / b):6.1f}%")


def sft_and_ppo():
    recs = records(RUNS + "ppo/metrics.jsonl")
    ev = [r for r in recs if r.get("kind") == "eval"]
    pp = [r for r in recs if r.get("kind") == "ppo"]
    if not ev:
        print(f"\nSFT / PPO: {RUNS}ppo/metrics.jsonl has no evaluation")
        return
    first, last = ev[0], ev[-1]
    per0 = first.get("true_accuracy_per_file", {})
    per1 = last.get("true_accuracy_per_file", {})
    n = int(config_value("ppo", "ppo", "eval_prompts", 32))  # per held-out file
    every = config_value("ppo", "ppo", "eval_every", "?")
    how = "%s reward, %s" % (config_value("ppo", "ppo", "reward_source", "?"), config_value("ppo", "ppo", "advantage", "?"))
    se = lambda p: math.sqrt(max(p * (1 - p), 1e-9) / n)
    task = lambda k: k.replace('prompts_', '').replace('_val', '')
    start = config_value("ppo", "", "init_from", None) or "the SFT model"
    sft = load(RUNS + "sft/eval_accuracy.json")
    print(f"\nSFT: true accuracy on {n} held-out prompts per task (greedy, exact match)")
    print("  chance: 1/6 = 0.167 for the three given words in a random order")
    print(f"  {'':10s} {'PPO start':>16s} {'SFT, all steps':>15s}")
    # Per task where the held-out prompts come in several files; else one row of all of them.
    for k, v in (per0 or {"all": first["true_accuracy"]}).items():
        done = sft and (sft["accuracy"] if k == "all" else next((f["accuracy"] for f in sft["files"] if f["name"] == k), None))
        print(f"  {task(k):10s} {v:.3f} (+- {se(v):.3f}) {fmt(done):>15s}")
    print(f"  (PPO starts from {start})")
    print(f"PPO ({last['step']} rollouts, {how}): true accuracy on the same held-out prompts")
    for k in per0:
        print(f"  {task(k):10s} {per0[k]:.3f} -> {per1.get(k, float('nan')):.3f}")
    curve = ", ".join("%.3f" % r["true_accuracy"] for r in ev[1:])
    print(f"  {'both':10s} {first['true_accuracy']:.3f} -> {last['true_accuracy']:.3f} (every {every} rollouts: {curve})")
    if pp:
        print(f"  KL to the SFT model (per response, nats): final {pp[-1]['kl']:.3f}, max {max(r['kl'] for r in pp):.3f}")
        k = min(5, len(pp))
        mean = lambda rs: sum(r.get("rule_reward", r["reward_mean"]) for r in rs) / len(rs)
        print(f"  sampled answers right (rollouts on training prompts, temperature): first {k} rollouts "
              f"{mean(pp[:k]):.3f}, last {k} {mean(pp[-k:]):.3f}")


def reward():
    print("\nreward model: pair accuracy on held-out pairs (chance 0.5)")
    for t in ("tasks", "reverse", "sort"):
        j = load(f"{RUNS}reward/eval_reward_{t}.json")
        name = "both" if t == "tasks" else t
        print(f"  {name:10s} {fmt(j and j['accuracy'])} ({j['pairs'] if j else 0} pairs, mean margin {fmt(j and j['mean_margin'], 2)})")


def passkey():
    w, n = load(RUNS + "passkey/passkey.json"), load(RUNS + "passkey/passkey_no_memory.json")
    if not w or not n:
        print(f"\npasskey: {RUNS}passkey/passkey.json or passkey_no_memory.json missing")
        return
    seg = int(config_value("passkey", "model", "segment_len", 0) or 0)
    steps = config_value("passkey", "train", "max_steps", "?")
    longest = config_value("passkey", "data", "seq_len", "?")
    print(f"\npasskey retrieval: the passkey model ({steps} steps on records of at most {longest} tokens) against")
    print(f"the same weights with the memory reset per segment; {w['digits']}-digit keys (chance 0.1),")
    print(f"{len(w['depths'])} depths x {w['trials']} keys per length")
    print("  (log p(key): the mean log-probability of the right key; a uniform guess among the digits: -2.30)")
    print(f"  {'tokens':>8s} {'segments':>9s} {'with memory':>12s} {'log p(key)':>11s} {'memory reset':>13s} "
          f"{'log p(key)':>11s}")
    cases = lambda j, L: [c for c in j["cases"] if L is None or c["length"] == L]
    acc = lambda cs: sum(c["correct"] for c in cs) / max(len(cs), 1)
    logp = lambda cs: sum(c["key_logprob"] for c in cs) / max(len(cs), 1)
    for L in w["lengths"] + [None]:
        a, b = cases(w, L), cases(n, L)
        name = "all" if L is None else str(L)
        segs = "" if L is None else (f"{-(-L // seg)}" if seg else "?")
        print(f"  {name:>8s} {segs:>9s} {acc(a):12.3f} {logp(a):11.2f} {acc(b):13.3f} {logp(b):11.2f}")


def longer():
    print("\nneeds longer than this job (the recipes, their figures in the docs):")
    print("  passkey retrieval to 1M tokens by the 4-block demo model (about 3 h on one core): the data of")
    print("  scripts/passkey_recipe.sh, then LAST=sft-4kb scripts/passkey_variant.sh unitgate")
    print("  model.memory.update=unit_delta model.memory.write_gate=true (docs/long-context.md)")
    print("  PPO on a third task (two-digit addition, 120 rollouts: +0.09), a deeper reward model,")
    print("  PPO against it: scripts/rlhf_demo.sh (docs/rlhf.md)")


def main():
    global RUNS
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--runs":
        RUNS = args[1]
        args = args[2:]
    times(args[0] if args else RUNS + "times.tsv")
    pretraining()
    sft_and_ppo()
    reward()
    passkey()
    longer()


if __name__ == "__main__":
    main()
