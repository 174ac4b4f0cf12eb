#!/usr/bin/env bash
# Makes the data the tiny configs (configs/tiny/*.yaml) read, in data/work/tiny/ (git-ignored), so
# they run as they are from a fresh clone: a corpus of short made-up sentences, a 320-piece
# tokenizer, token shards, SFT records, preference pairs and PPO prompts (2-digit addition), and
# passkey records.
# Idempotent. Not the tests' data (they make their own in scratch folders).
# Usage: scripts/tiny_data.sh   (env INFINI=path to the binary, default build/infini; OUT=folder)
# Then: infini train configs/tiny/pretrain.yaml; ... sft.yaml; ... reward.yaml; ... ppo.yaml; ... dpo.yaml;
# ... passkey.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
INFINI=${INFINI:-build/infini}
OUT=${OUT:-data/work/tiny}
[[ -x "$INFINI" ]] || { echo "tiny_data.sh: $INFINI not found; build first (scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$OUT"
if [[ -f "$OUT/prompts_val.jsonl" ]]; then
  echo "tiny data: present in $OUT"
  exit 0
fi
# 6000 sentences over a few names, verbs, counts and places, four to a paragraph (a document).
awk -v n=6000 'BEGIN {
  srand(7)
  split("Ada Bram Cleo Dov Esme Finn Gus Hana", names, " ")
  split("apple stone river lamp book coin bell rope", things, " ")
  split("finds keeps gives sells paints hides", verbs, " ")
  split("the hill|the market|the old mill|the shore|the garden", places, "|")
  for (i = 0; i < n; i++) {
    k = 1 + int(rand() * 9)
    printf "%s %s %d %s%s at %s. ", names[1 + int(rand() * 8)], verbs[1 + int(rand() * 6)], k,
      things[1 + int(rand() * 8)], (k > 1 ? "s" : ""), places[1 + int(rand() * 5)]
    if (i % 4 == 3) printf "\n\n"
  }
}' > "$OUT/corpus.txt"
"$INFINI" tokenizer train --input "$OUT/corpus.txt" --vocab-size 320 --out "$OUT/tokenizer"
"$INFINI" data prepare --tokenizer "$OUT/tokenizer.model" --input "$OUT/corpus.txt" --out "$OUT/shards" --val-fraction 0.05
"$INFINI" data synth --task add --kind sft --count 200 --seed 1 --out "$OUT/sft.jsonl"
"$INFINI" data synth --task add --kind preference --count 200 --seed 2 --out "$OUT/pref.jsonl"
"$INFINI" data synth --task add --kind preference --count 50 --seed 3 --out "$OUT/pref_val.jsonl"
"$INFINI" data synth --task add --kind prompts --count 100 --seed 4 --out "$OUT/prompts.jsonl"
"$INFINI" data synth --task passkey --kind sft --tokenizer "$OUT/tokenizer.model" --length 240 --digits 1 --count 40 \
  --seed 6 --out "$OUT/passkey.jsonl"
"$INFINI" data synth --task add --kind prompts --count 20 --seed 5 --out "$OUT/prompts_val.jsonl.tmp"
mv "$OUT/prompts_val.jsonl.tmp" "$OUT/prompts_val.jsonl"  # last: its presence means the set is complete
echo "tiny data: written to $OUT"
