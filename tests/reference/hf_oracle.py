# The oracle of tests/test_hf_checkpoint.cpp: Hugging Face transformers itself (not our reading
# of it). `make` saves small random LlamaForCausalLM / MistralForCausalLM models with
# save_pretrained and writes their logits and greedy tokens for fixed inputs; `check` loads
# folders written by `infini export hf` with from_pretrained and compares their logits with the
# originals'. Not part of infini: the C++ never imports Python at run time.
#
#   PY tests/reference/hf_oracle.py make --out DIR
#   PY tests/reference/hf_oracle.py check --out VERDICT.json FOLDER=ORACLE.safetensors ...
# PY is a Python with torch, transformers and safetensors (scripts/setup.sh pins the versions).
import argparse
import json
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

# name: (architecture, config kwargs). Odd sizes on purpose: d_model 48 with 3 heads, vocab 101.
CASES = {
    "mha_tied": ("llama", dict(vocab_size=96, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                               num_attention_heads=3, num_key_value_heads=3, rope_theta=10000.0,
                               rms_norm_eps=1e-6, tie_word_embeddings=True)),
    "gqa_untied": ("llama", dict(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0,
                                 rms_norm_eps=1e-5, tie_word_embeddings=False)),
    "mqa_untied": ("llama", dict(vocab_size=77, hidden_size=40, intermediate_size=56, num_hidden_layers=1,
                                 num_attention_heads=5, num_key_value_heads=1, rope_theta=10000.0,
                                 rms_norm_eps=1e-6, tie_word_embeddings=False)),
    "mistral_gqa": ("mistral", dict(vocab_size=90, hidden_size=32, intermediate_size=72, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, rope_theta=1000000.0,
                                    rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None)),
    # A tokenizer (the test copies a sentencepiece tokenizer.model of 320 pieces in).
    "tok320": ("llama", dict(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False)),
}
BATCH, SEQ, PROMPT, NEW = 2, 24, 4, 12


def build(arch, kw, seed):
    torch.manual_seed(seed)
    common = dict(max_position_embeddings=64, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**kw, **common))
    else:
        model = MistralForCausalLM(MistralConfig(**kw, **common))
    # Large random weights and norms away from 1: a wrong row order or name map shows in the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (1.0 / p.shape[1] ** 0.5))
    return model.eval()


@torch.no_grad()
def outputs(model, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (BATCH, SEQ), generator=g)
    logits = model(input_ids=ids).logits.float()
    seq = ids[:1, :PROMPT]
    for _ in range(NEW):  # greedy by hand: no generation-config defaults (eos, lengths) in the way
        nxt = model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    return {"input_ids": ids, "logits": logits.contiguous(), "greedy": seq[0].contiguous()}


def make(out):
    os.makedirs(out, exist_ok=True)
    for i, (name, (arch, kw)) in enumerate(CASES.items()):
        model = build(arch, kw, 100 + i)
        model.save_pretrained(os.path.join(out, name))
        save_file(outputs(model, kw["vocab_size"], 7 + i), os.path.join(out, name + ".oracle.safetensors"))
        if name == "gqa_untied":  # the same model in shards of a few kilobytes
            model.save_pretrained(os.path.join(out, name + "_sharded"), max_shard_size="40KB")
        if name == "mha_tied":  # half-precision saves; their oracle is the fp32 model of the rounded weights
            for dt, tag in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
                ref = build(arch, kw, 100 + i)
                with torch.no_grad():  # round the parameters only: .to(dt) would round RoPE's inv_freq too
                    for p in ref.parameters():
                        p.copy_(p.to(dt).float())
                save_file(outputs(ref, kw["vocab_size"], 7 + i), os.path.join(out, f"{name}_{tag}.oracle.safetensors"))
                ref.to(dt).save_pretrained(os.path.join(out, f"{name}_{tag}"))
    with open(os.path.join(out, "versions.json"), "w") as f:
        import transformers, safetensors
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
                   "safetensors": safetensors.__version__}, f)


@torch.no_grad()
def check(out, pairs):
    verdict = {}
    for pair in pairs:
        folder, oracle = pair.split("=", 1)
        want = load_file(oracle)
        model, info = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True,
                                                       attn_implementation="eager")
        model.eval()
        got = outputs_for(model, want)
        verdict[folder] = {
            "max_abs_diff": (got["logits"] - want["logits"]).abs().max().item(),
            "greedy_equal": bool(torch.equal(got["greedy"], want["greedy"])),
            "missing_keys": sorted(info["missing_keys"]),
            "unexpected_keys": sorted(info["unexpected_keys"]),
        }
    with open(out, "w") as f:
        json.dump(verdict, f, indent=1)


def outputs_for(model, want):
    logits = model(input_ids=want["input_ids"]).logits.float()
    seq = want["greedy"][:PROMPT][None]
    for _ in range(NEW):
        seq = torch.cat([seq, model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
    return {"logits": logits, "greedy": seq[0]}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--out", required=True)
    c.add_argument("pairs", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "make":
        make(a.out)
    else:
        check(a.out, a.pairs)


if __name__ == "__main__":
    main()
