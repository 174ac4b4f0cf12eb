"""Independent PyTorch reference of the DPO-family losses (tests/test_dpo.cpp compares with it).

Reads a JSON problem: hidden states of the policy and of the reference (2B, T, D, chosen rows then
rejected rows), the LM head weight (V, D), tokens (2B, T), loss mask (2B, T), beta, loss
(sigmoid | ipo | hinge) and label_smoothing. Computes, the way TRL's DPOTrainer writes it, the full
log-softmax over the vocabulary at every position, the log-probabilities of the next tokens summed
over the loss mask (averaged per token for ipo), and the loss; writes the loss and its gradient with
respect to the policy's hidden states and the head weight as JSON.

Usage: python dpo_reference.py PROBLEM.json OUT.json
"""
import json
import sys

import torch
import torch.nn.functional as F


def sequence_logps(hidden, weight, tokens, mask, average):
    logits = hidden[:, :-1, :] @ weight.T                      # (N, T-1, V)
    logp = F.log_softmax(logits, dim=-1)
    picked = torch.gather(logp, 2, tokens[:, 1:].unsqueeze(2)).squeeze(2)
    m = mask[:, 1:]
    s = (picked * m).sum(-1)
    return s / m.sum(-1).clamp(min=1) if average else s


def main():
    p = json.load(open(sys.argv[1]))
    dt = torch.float32
    hidden = torch.tensor(p["hidden"], dtype=dt, requires_grad=True)
    ref_hidden = torch.tensor(p["ref_hidden"], dtype=dt)
    weight = torch.tensor(p["weight"], dtype=dt, requires_grad=True)
    tokens = torch.tensor(p["tokens"], dtype=torch.long)
    mask = torch.tensor(p["mask"], dtype=dt)
    beta, kind, eps = float(p["beta"]), p["loss"], float(p["label_smoothing"])
    B = tokens.shape[0] // 2
    avg = kind == "ipo"
    pi = sequence_logps(hidden, weight, tokens, mask, avg)
    with torch.no_grad():
        ref = sequence_logps(ref_hidden, weight, tokens, mask, avg)
    pi_logratios = pi[:B] - pi[B:]
    ref_logratios = ref[:B] - ref[B:]
    logits = pi_logratios - ref_logratios
    if kind == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps
    elif kind == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif kind == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise SystemExit(f"unknown loss {kind}")
    loss = losses.mean()
    loss.backward()
    chosen_rewards = beta * (pi[:B] - ref[:B]).detach()
    rejected_rewards = beta * (pi[B:] - ref[B:]).detach()
    json.dump({
        "loss": loss.item(),
        "h": logits.detach().tolist(),
        "rewards_chosen": chosen_rewards.tolist(),
        "rewards_rejected": rejected_rewards.tolist(),
        "grad_hidden": hidden.grad.tolist(),
        "grad_weight": weight.grad.tolist(),
    }, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
