#!/usr/bin/env bash
# Continual pretraining of a Hugging Face LLaMA with Infini-attention added (docs/hf.md), as the
# paper did with its LLMs, end to end, with the wall time of each stage:
#   0. the starting model: MODEL (a Hugging Face folder; its sizes in configs/continual/model.yaml),
#      or else a stand-in made here: a random LlamaForCausalLM from transformers
#      (scripts/make_hf_llama.py), pretrained briefly as a plain LLaMA (configs/continual/base.yaml)
#      and exported with `infini export hf`
#   1. convert hf --memory on --segment-len 128 (the original model inside a segment)
#   2. eval ppl --compare of the converted model on a long document (before)
#   3. continued pretraining on 2048-token sequences, 16 segments (continue.yaml)
#   4. eval ppl --compare (after)
#   5. SFT on ~1K-token passkey records, 8 segments (passkey_sft.yaml)
#   6. eval passkey (1-digit keys) at LENGTHS, with memory and with the memory reset per segment
# Needs scripts/run.sh's demo tokenizer, shards and corpora. Re-running resumes or skips.
# Usage: scripts/continual_recipe.sh
#   env: MODEL=DIR; THREADS=0 (all cores); LENGTHS=1k,2k,4k; TRIALS=3; STEPS=N caps every stage's
#   steps (a smoke run); PY (a Python with transformers, for the stand-in: build-torch2/venv/bin/python);
#   INFINI_TORCH=pip or INFINI for another build
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/flavour.sh
INFINI=${INFINI:-$BUILD_DIR/infini}
PY=${PY:-build-torch2/venv/bin/python}
THREADS=${THREADS:-0}
LENGTHS=${LENGTHS:-1k,2k,4k}
TRIALS=${TRIALS:-3}
T=data/work/demo/tokenizer.model
W=data/work/continual
DOC=data/corpora/austen.txt  # the long document of the perplexity comparisons (first 32K tokens)
for need in "$INFINI" $T data/work/demo/shards/index.json $DOC; do
  [[ -e $need ]] || { echo "error: $need not found: run scripts/run.sh first" >&2; exit 1; }
done
CAP=(); [[ -n ${STEPS:-} ]] && CAP=("train.max_steps=$STEPS" "train.eval_every=$STEPS" "checkpoint.every=$STEPS")
timed() { local name=$1 t0=$SECONDS; shift; "$@"; echo "== $name: $((SECONDS - t0)) s"; }
train() { $INFINI train "configs/continual/$1" run.threads="$THREADS" "${CAP[@]}" "${@:2}"; }
mkdir -p $W

if [[ -n ${MODEL:-} ]]; then
  START=$MODEL
else
  START=$W/llama-base
  if [[ ! -f $START/config.json ]]; then
    [[ -x $PY ]] || { echo "error: $PY not found: the stand-in model needs a Python with transformers (INFINI_TORCH=pip scripts/setup.sh, or PY=...)" >&2; exit 1; }
    [[ -f $W/llama-random/config.json ]] || timed "stand-in: a random LLaMA (transformers)" \
      "$PY" scripts/make_hf_llama.py --out $W/llama-random --tokenizer $T
    timed "stand-in: pretrain it as a plain LLaMA" train base.yaml
    timed "stand-in: export hf" $INFINI export hf --checkpoint runs/continual-base --out $START
  fi
fi

[[ -f runs/continual-converted/checkpoints/latest ]] || timed "convert hf --memory on" \
  $INFINI convert hf --model "$START" --out runs/continual-converted --memory on --update delta --segment-len 128
[[ -f $W/ppl_before.json ]] || timed "eval ppl, converted (before)" $INFINI eval ppl --checkpoint runs/continual-converted \
  --text $DOC --max-tokens 32768 --compare --threads "$THREADS" --out $W/ppl_before.json
timed "continued pretraining, 2048-token sequences" train continue.yaml
[[ -f $W/ppl_after.json ]] || timed "eval ppl, continued (after)" $INFINI eval ppl --checkpoint runs/continual-continue \
  --text $DOC --max-tokens 32768 --compare --threads "$THREADS" --out $W/ppl_after.json
[[ -f $W/passkey_1k.jsonl ]] || $INFINI data synth --task passkey --kind sft --tokenizer $T --out $W/passkey_1k.jsonl \
  --count 1200 --seed 9 --length 1024 --digits 1
[[ -f $W/passkey_1k_val.jsonl ]] || $INFINI data synth --task passkey --kind sft --tokenizer $T \
  --out $W/passkey_1k_val.jsonl --count 32 --seed 96 --length 1024 --digits 1
timed "passkey SFT, 1K-token records" train passkey_sft.yaml
for mode in memory reset; do
  out=$W/passkey_$mode.json
  flag=(); [[ $mode == reset ]] && flag=(--no-memory)
  [[ -f $out ]] || timed "eval passkey ($mode)" $INFINI eval passkey --checkpoint runs/continual-passkey --chat \
    --precision auto --digits 1 --lengths "$LENGTHS" --depths 0,0.5,1 --trials "$TRIALS" --threads "$THREADS" \
    "${flag[@]}" --out "$out"
done
/usr/bin/python3 - $W <<'PY'
import json, sys
w = sys.argv[1]
def ppl(name):
    j = json.load(open(f"{w}/{name}"))
    return j["with_memory"]["ppl"], j["no_memory"]["ppl"]
for name, label in (("ppl_before.json", "converted (before)"), ("ppl_after.json", "continued (after)")):
    m, n = ppl(name)
    print(f"{label:22s} ppl with memory {m:9.3f}   memory reset per segment {n:9.3f}")
for mode in ("memory", "reset"):
    j = json.load(open(f"{w}/passkey_{mode}.json"))
    print(f"passkey ({mode:6s})       accuracy {j['accuracy']:.3f}")
PY
