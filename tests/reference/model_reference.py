# Independent PyTorch reference of the Infini-Transformer decoder: a plain loop over segments.
# Writes tests/golden/model_*.safetensors for the C++ tests; `--bench` times a training step.
# Not the product: no batching tricks, no streaming state, no I/O beyond the golden files.
#
#   /usr/bin/python3 tests/reference/model_reference.py            # regenerate goldens
#   /usr/bin/python3 tests/reference/model_reference.py --bench --bf16 --batch 4 --seq 1024
import argparse
import json
import math
import os
import statistics
import struct
import time

import torch
import torch.nn.functional as F


def rmsnorm(x, w, eps):
    xf = x.float()
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos0, theta):
    """x (B, L, H, Dh): rotate adjacent pairs (x[2i], x[2i+1]) at positions pos0.. (llama2.c)."""
    L, dh = x.shape[1], x.shape[-1]
    i = torch.arange(0, dh, 2, dtype=torch.float64)
    freq = theta ** (-i / dh)
    ang = torch.outer(torch.arange(pos0, pos0 + L, dtype=torch.float64), freq)
    c = ang.cos().float().to(x.dtype)[None, :, None, :]  # (1, L, 1, Dh/2)
    s = ang.sin().float().to(x.dtype)[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).flatten(-2)


def sigma(x):
    return F.elu(x) + 1.0


def attention(p, pre, x, cfg, parts=None):
    """One Infini-attention layer, segment by segment. x (B, T, D)."""
    B, T, _ = x.shape
    H, Hkv, N = cfg["n_heads"], cfg["n_kv_heads"], cfg["segment_len"]
    Dh, G = cfg["d_model"] // H, H // Hkv
    eps = cfg["memory_eps"]
    q = (x @ p[pre + "wq.weight"].T).view(B, T, H, Dh)
    k = (x @ p[pre + "wk.weight"].T).view(B, T, Hkv, Dh)
    v = (x @ p[pre + "wv.weight"].T).view(B, T, Hkv, Dh)
    mem = cfg["memory_enabled"]
    M = torch.zeros(B, Hkv, Dh, Dh, dtype=torch.float32)
    z = torch.zeros(B, Hkv, Dh, dtype=torch.float32)
    outs, dots, mems = [], [], []
    for s0 in range(0, T, N):
        qs, ks, vs = q[:, s0:s0 + N], k[:, s0:s0 + N], v[:, s0:s0 + N]
        L = qs.shape[1]
        qr, kr = rope(qs, 0, cfg["rope_theta"]), rope(ks, 0, cfg["rope_theta"])
        kr_e, v_e = kr.repeat_interleave(G, 2), vs.repeat_interleave(G, 2)  # (B, L, H, Dh)
        sc = torch.einsum("blhd,bmhd->bhlm", qr, kr_e).float() / math.sqrt(Dh)
        causal = torch.ones(L, L, dtype=torch.bool).triu(1)
        pr = sc.masked_fill(causal, float("-inf")).softmax(-1)
        a_dot = torch.einsum("bhlm,bmhd->blhd", pr.to(v_e.dtype), v_e)
        a = a_dot
        if mem:
            sq = sigma(qs.float())
            Me, ze = M.repeat_interleave(G, 1), z.repeat_interleave(G, 1)
            a_mem = torch.einsum("blhd,bhde->blhe", sq, Me) / (torch.einsum("blhd,bhd->blh", sq, ze)[..., None] + eps)
            g = torch.sigmoid(p[pre + "gate"])[None, None, :, None]
            a = g * a_mem + (1 - g) * a_dot.float()
            mems.append(a_mem)
            sk, vf = sigma(ks.float()), vs.float()
            upd = vf
            if cfg["update"] == "delta":
                ret = torch.einsum("blhd,bhde->blhe", sk, M) / (torch.einsum("blhd,bhd->blh", sk, z)[..., None] + eps)
                upd = vf - ret
            M = M + torch.einsum("blhd,blhe->bhde", sk, upd)
            z = z + sk.sum(1)
            if cfg["gradient"] == "detach":
                M, z = M.detach(), z.detach()
        dots.append(a_dot)
        outs.append(a)
    a = torch.cat(outs, 1).reshape(B, T, H * Dh)
    if parts is not None:
        parts["a_dot"] = torch.cat(dots, 1)
        if mem:
            parts["a_mem"] = torch.cat(mems, 1)
    return a.to(x.dtype) @ p[pre + "wo.weight"].T


def ffn(p, pre, x):
    return (F.silu(x @ p[pre + "w1.weight"].T) * (x @ p[pre + "w3.weight"].T)) @ p[pre + "w2.weight"].T


def block(p, i, x, cfg):
    pre = f"layers.{i}."
    h = x + attention(p, pre + "attention.", rmsnorm(x, p[pre + "attention_norm.weight"], cfg["norm_eps"]), cfg)
    return h + ffn(p, pre + "feed_forward.", rmsnorm(h, p[pre + "ffn_norm.weight"], cfg["norm_eps"]))


def decoder(p, tokens, cfg):
    x = p["tok_embeddings.weight"][tokens]
    for i in range(cfg["n_layers"]):
        x = block(p, i, x, cfg)
    h = rmsnorm(x, p["norm.weight"], cfg["norm_eps"])
    if cfg["head"] == "scalar":
        return (h @ p["score.weight"].T).squeeze(-1).float()
    w = p["tok_embeddings.weight"] if cfg["tie_embeddings"] else p["output.weight"]
    return (h @ w.T).float()


def make_params(cfg, gen):
    V, D, F_, H, Hkv = cfg["vocab_size"], cfg["d_model"], cfg["ffn_hidden"], cfg["n_heads"], cfg["n_kv_heads"]
    Dh = D // H
    std = cfg["init_std"]
    rs = std / math.sqrt(2 * cfg["n_layers"])

    def nrm(*shape, s=std):
        return torch.randn(*shape, generator=gen) * s

    p = {"tok_embeddings.weight": nrm(V, D)}
    for i in range(cfg["n_layers"]):
        pre = f"layers.{i}."
        # Norm weights and gates are randomised too, so a mix-up of them cannot pass.
        p[pre + "attention_norm.weight"] = 1 + 0.1 * torch.randn(D, generator=gen)
        p[pre + "attention.wq.weight"] = nrm(H * Dh, D)
        p[pre + "attention.wk.weight"] = nrm(Hkv * Dh, D)
        p[pre + "attention.wv.weight"] = nrm(Hkv * Dh, D)
        p[pre + "attention.wo.weight"] = nrm(D, H * Dh, s=rs)
        if cfg["memory_enabled"]:
            p[pre + "attention.gate"] = torch.randn(H, generator=gen)
        p[pre + "ffn_norm.weight"] = 1 + 0.1 * torch.randn(D, generator=gen)
        p[pre + "feed_forward.w1.weight"] = nrm(F_, D)
        p[pre + "feed_forward.w2.weight"] = nrm(D, F_, s=rs)
        p[pre + "feed_forward.w3.weight"] = nrm(F_, D)
    p["norm.weight"] = 1 + 0.1 * torch.randn(D, generator=gen)
    if cfg["head"] == "scalar":
        p["score.weight"] = nrm(1, D)
    elif not cfg["tie_embeddings"]:
        p["output.weight"] = nrm(V, D)
    return p


def save_safetensors(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dt = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        b = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


BASE = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=48, segment_len=8,
            rope_theta=10000.0, norm_eps=1e-5, memory_eps=1e-6, init_std=0.2, memory_enabled=True,
            update="linear", gradient="bptt", tie_embeddings=False, head="lm")
VARIANTS = {
    "linear": dict(),
    "delta": dict(update="delta"),
    "tied": dict(update="delta", tie_embeddings=True, n_kv_heads=4),
    "scalar": dict(head="scalar", n_kv_heads=1),
    "nomem": dict(memory_enabled=False),
}


def write_goldens(out_dir):
    torch.manual_seed(0)
    for vi, (name, over) in enumerate(VARIANTS.items()):
        cfg = dict(BASE, **over)
        gen = torch.Generator().manual_seed(1000 + vi)
        p = make_params(cfg, gen)
        B, T = 2, 21
        tokens = torch.randint(0, cfg["vocab_size"], (B, T), generator=gen)
        x = torch.randn(B, T, cfg["d_model"], generator=gen)  # input of the per-module checks
        out = {"param." + k: v for k, v in p.items()}
        out["tokens"] = tokens
        out["x"] = x
        with torch.no_grad():
            out["rmsnorm"] = rmsnorm(x, p["layers.0.attention_norm.weight"], cfg["norm_eps"])
            H = cfg["n_heads"]
            out["rope"] = rope(x.view(B, T, H, -1), 3, cfg["rope_theta"]).reshape(B, T, -1)
            out["swiglu"] = ffn(p, "layers.0.feed_forward.", x)
            parts = {}
            out["attention"] = attention(p, "layers.0.attention.", x, cfg, parts)
            out["attention.a_dot"] = parts["a_dot"].float()
            if "a_mem" in parts:
                out["attention.a_mem"] = parts["a_mem"]
            out["block"] = block(p, 0, x, cfg)
            out["output"] = decoder(p, tokens, cfg)
        meta = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in cfg.items()}
        path = os.path.join(out_dir, f"model_{name}.safetensors")
        save_safetensors(path, out, meta)
        print("wrote", path, os.path.getsize(path), "bytes")


def bench(a):
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    cfg = dict(BASE, vocab_size=a.vocab, d_model=a.d_model, n_layers=a.layers, n_heads=a.heads,
               n_kv_heads=a.heads, segment_len=a.segment, init_std=0.02, update=a.update,
               memory_enabled=not a.no_memory)
    cfg["ffn_hidden"] = ((8 * a.d_model // 3 + 63) // 64) * 64
    gen = torch.Generator().manual_seed(0)
    p = {k: v.requires_grad_() for k, v in make_params(cfg, gen).items()}
    tokens = torch.randint(0, cfg["vocab_size"], (a.batch, a.seq + 1), generator=gen)

    fwd = torch.compile(decoder) if a.compile else decoder  # the first (warm-up) step compiles

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = fwd(p, tokens[:, :-1], cfg)
        loss = F.cross_entropy(logits.float().reshape(-1, cfg["vocab_size"]), tokens[:, 1:].reshape(-1))
        loss.backward()
        for v in p.values():
            v.grad = None

    step()  # warm-up
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    print(f"python reference: {a.batch * a.seq / dt:.0f} tokens/s (fwd+bwd, median of {a.steps} steps, "
          f"{'bf16' if a.bf16 else 'fp32'}, {a.update}, memory {'off' if a.no_memory else 'on'}"
          f"{', torch.compile' if a.compile else ''})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "golden"))
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true", help="--bench: the forward through torch.compile")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--update", default="linear")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--segment", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    a = ap.parse_args()
    if a.bench:
        bench(a)
    else:
        write_goldens(a.out)
