# A random LlamaForCausalLM of a given shape, saved with transformers' save_pretrained (safetensors)
# with a sentencepiece tokenizer.model copied in: the stand-in for a pretrained Hugging Face model
# in scripts/continual_recipe.sh, where no model hub is reachable. Not used by infini itself; needs
# torch and transformers (the pip flavour's virtual environment, build-torch2/venv/bin/python).
#   PY scripts/make_hf_llama.py --out DIR --tokenizer data/work/demo/tokenizer.model [--d-model 256 ...]
import argparse
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--out", required=True)
ap.add_argument("--tokenizer", required=True, help="sentencepiece model whose ids the model reads")
ap.add_argument("--vocab", type=int, default=4096)
ap.add_argument("--d-model", type=int, default=256)
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--kv-heads", type=int, default=4)
ap.add_argument("--ffn", type=int, default=704)
ap.add_argument("--max-positions", type=int, default=2048)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()

torch.manual_seed(a.seed)
config = LlamaConfig(vocab_size=a.vocab, hidden_size=a.d_model, intermediate_size=a.ffn, num_hidden_layers=a.layers,
                     num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                     max_position_embeddings=a.max_positions, rms_norm_eps=1e-5, rope_theta=10000.0,
                     tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
LlamaForCausalLM(config).save_pretrained(a.out, safe_serialization=True)
shutil.copy(a.tokenizer, os.path.join(a.out, "tokenizer.model"))
print(f"{a.out}: random LlamaForCausalLM, d_model {a.d_model}, {a.layers} layers, vocab {a.vocab}")
