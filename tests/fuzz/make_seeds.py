#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets, tests/fuzz/corpus/<target>/ (small,
real-looking inputs; each file a few KB at most). Deterministic: run it again and git sees no
change. Needs torch only for the CPU generator state in the trainer_state seeds (any python with
torch, e.g. build-torch2/venv/bin/python); without it those seeds are left as they are.
Not the fuzzers' growing corpus (build-fuzz/fuzz-corpus/, scripts/fuzz.sh).
Usage: python3 tests/fuzz/make_seeds.py
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def config_seeds():
    # Shipped configs as they are (their data paths are never opened by the loader), with overrides
    # after a '\0' byte, one per line; `base:` names one of the files the target writes (base.yaml,
    # chain.yaml, cycle.yaml).
    for name in ["tiny/pretrain", "tiny/sft", "tiny/reward", "tiny/ppo", "rlhf/ppo_rloo"]:
        with open(os.path.join(ROOT, "configs", name + ".yaml")) as f:
            text = f.read()
        text = "\n".join(l for l in text.splitlines() if not l.startswith("base:")) + "\n"
        write("config", name.replace("/", "_") + ".yaml", text)
    with open(os.path.join(ROOT, "configs", "tiny", "pretrain.yaml")) as f:
        pretrain = f.read()
    write("config", "overrides.yaml",
          pretrain + "\0train.max_steps=5\nmodel.d_model=128\noptim.betas=[0.8, 0.99]\nrun.precision=bf16\n"
          "data.chat.user_prefix='User: '\n")
    write("config", "base.yaml", "base: base.yaml\nstage: sft\ndata: {format: sft, truncate: left}\n")
    write("config", "chain.yaml", "base: chain.yaml\nstage: pretrain\n\0schedule.decay=linear\n")
    write("config", "memory.yaml",
          "base: base.yaml\nstage: pretrain\nmodel:\n  memory: {enabled: true, update: linear, gradient: detach}\n"
          "train: {prefix_gradient: writes, prefix_write_weight: 0.5}\n")


def records_seeds():
    sft = [
        {"prompt": "What is 2 + 3?", "response": "5"},
        {"instruction": "Reverse the words", "input": "red blue green", "output": "green blue red"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello."}]},
    ]
    write("records", "sft.jsonl", "".join(json.dumps(r) + "\n" for r in sft))
    pref = [
        {"prompt": "2 + 2 =", "chosen": "4", "rejected": "5"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?",
         "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."},
    ]
    write("records", "preference.jsonl", "".join(json.dumps(r) + "\n" for r in pref))
    prompts = [{"prompt": "12 + 30 =", "answer": "42"}, {"prompt": "7 + 8 =", "answer": 15}, {"prompt": "Say hi"}]
    write("records", "prompts.jsonl", "\n".join(json.dumps(r) for r in prompts) + "\n\n")
    write("records", "array.json", json.dumps(sft[:2] + pref[:1], indent=1) + "\n")
    # gzip with a fixed mtime: the same bytes on every run
    write("records", "sft.jsonl.gz", gzip.compress("".join(json.dumps(r) + "\n" for r in sft).encode(), mtime=0))


def chat_seeds():
    # byte 0: truncate mode (0 right, 1 left, 2 drop, 3 invalid); bytes 1-2: require_target bit and
    # max_len; then chosen '\0' rejected.
    hh_a = "\n\nHuman: What is 2+2?\n\nAssistant: It is 4."
    hh_b = "\n\nHuman: What is 2+2?\n\nAssistant: Maybe 5."
    write("chat", "left_hh", bytes([1, 1, 40]) + (hh_a + "\0" + hh_b).encode())
    write("chat", "right_short", bytes([0, 0, 200]) + b"Hello there\0Hello")
    write("chat", "drop", bytes([2, 1, 8]) + ("\n\nHuman: x\n\nAssistant: a much longer answer\0"
                                              "\n\nHuman: x\n\nAssistant: b").encode())
    write("chat", "invalid_mode", bytes([3, 0, 4]) + b"long enough to be cut\0")


def safetensors_file(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    f32 = struct.pack("<6f", 0.5, -1.0, 2.0, 0.0, 3.25, -0.125)
    write("safetensors", "model.safetensors", safetensors_file(
        [("embed.weight", "F32", [2, 3], f32), ("norm.weight", "BF16", [2], b"\x80\x3f\x00\x40")],
        {"format": "pt", "model_config": json.dumps({"vocab_size": 2, "d_model": 3})}))
    write("safetensors", "dtypes.safetensors", safetensors_file([
        ("a_bool", "BOOL", [3], b"\x00\x01\x01"), ("b_i64", "I64", [1], struct.pack("<q", -7)),
        ("c_u8", "U8", [2, 1], b"\x07\xff"), ("d_f16", "F16", [], b"\x00\x3c"), ("e_empty", "F32", [0, 4], b""),
        ("f_i32", "I32", [1], struct.pack("<i", 9)), ("g_f64", "F64", [1], struct.pack("<d", 1.5)),
        ("h_i16", "I16", [1], struct.pack("<h", -2)), ("i_i8", "I8", [1], b"\xfe")]))
    write("safetensors", "metadata_only.safetensors", safetensors_file([], {"stage": "sft"}))


def llama2c_file(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared=True):
    hs = dim // heads
    kv_dim = dim * kv_heads // heads
    floats = (vocab * dim + layers * dim + layers * dim * dim + 2 * layers * kv_dim * dim + layers * dim * dim +
              layers * dim + 3 * layers * hidden * dim + dim + seq_len * hs + (0 if shared else vocab * dim))
    header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq_len)
    return header + b"".join(struct.pack("<f", ((i * 37) % 19 - 9) / 16.0) for i in range(floats))


def llama2c_seeds():
    write("llama2c", "tied.bin", llama2c_file(8, 16, 1, 2, 1, 8, 4))
    write("llama2c", "untied.bin", llama2c_file(4, 8, 2, 2, 2, 6, 2, shared=False))


def shard_index_seeds():
    # As `infini data prepare` writes it; the target's folder holds train_000.bin (301 tokens) and
    # val_000.bin (61 tokens).
    index = {"format": "infini-token-shards", "version": 1, "vocab_size": 320, "bos_id": 1, "eos_id": 2,
             "tokenizer": "data/work/tiny/tokenizer.model", "tokenizer_hash": "5f1d2c3b4a596877",
             "inputs": ["data/work/tiny/corpus.txt"], "val_fraction": 0.05,
             "document": "blocks of lines between blank lines, at most 65536 bytes; joined with EOS",
             "train": [{"file": "train_000.bin", "tokens": 301, "documents": 12}],
             "val": [{"file": "val_000.bin", "tokens": 61, "documents": 1}],
             "documents": {"train": 12, "val": 1}, "tokens": {"train": 301, "val": 61}, "bytes": 1500}
    write("shard_index", "index.json", json.dumps(index, indent=2) + "\n")
    index2 = dict(index)
    index2["val"] = []
    del index2["tokenizer_hash"]
    index2["train"] = [{"file": "train_000.bin"}, {"file": "val_000.bin", "tokens": 61}]
    write("shard_index", "no_val.json", json.dumps(index2, indent=2) + "\n")


def trainer_state_seeds():
    try:
        import torch
    except ImportError:
        print("make_seeds.py: no torch here; the trainer_state seeds are left as they are")
        return
    torch.manual_seed(0)
    rng = torch.get_rng_state().numpy().tobytes().hex()
    loader = {"epoch": 0, "index": 3, "samples": 20, "world_size": 1, "rank": 0, "seed": 0, "format": "tokens"}
    pretrain = {"step": 5, "stage": "pretrain", "tokens_seen": 1280.0, "loader": loader, "rng_cpu": rng,
                "schedule": {"lr": 0.003}, "format_version": 1}
    write("trainer_state", "pretrain.json", json.dumps(pretrain, indent=2) + "\n")
    torch.manual_seed(1)
    ppo = {"step": 5, "stage": "ppo", "loader": dict(loader, index=0, epoch=2),
           "kl_controller": {"value": 0.05, "adaptive": False, "target": 6.0, "horizon": 10000},
           "rng_cpu": rng, "sampling_rng": torch.get_rng_state().numpy().tobytes().hex(), "format_version": 1}
    write("trainer_state", "ppo.json", json.dumps(ppo, indent=2) + "\n")
    write("trainer_state", "convert.json", json.dumps({"step": 0, "stage": "convert", "format_version": 1}) + "\n")


if __name__ == "__main__":
    config_seeds()
    records_seeds()
    chat_seeds()
    safetensors_seeds()
    llama2c_seeds()
    shard_index_seeds()
    trainer_state_seeds()
