#!/usr/bin/env python3
"""tests/torch_parity.py — rebuild an attnlab model in PyTorch and compare loss and gradients.

Usage: torch_parity.py DIR
DIR holds what tests/test_models.cpp (or test_lm.cpp) wrote: config.json (the model config),
model.safetensors (weights), batch.json (src, tgt_in, tgt_out, B, S, T; for an mlm, src is the
masked input and "targets" the tokens to predict), attnlab.safetensors (attnlab's loss and the
gradient of every parameter, named "grad/<param>"). The PyTorch models below are written from
the paper-level description (pre-LN encoder-decoder, tied embeddings, sinusoidal positions; a
decoder-only stack for arch "lm", an encoder-only one for "mlm"), not from attnlab's code. Prints one JSON line; exits 1 if any relative error
exceeds 1e-4.
"""
import json
import math
import struct
import sys

import numpy as np
import torch

torch.set_grad_enabled(True)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).copy())
    return out


def variant(spec):
    parts = spec.split("+")
    return {"qq": parts[0] == "qq", "noself": "noself" in parts, "normk": "normk" in parts,
            "noV": "noV" in parts, "noO": "noO" in parts}


def main(d):
    cfg = json.load(open(f"{d}/config.json"))
    batch = json.load(open(f"{d}/batch.json"))
    w = {k: v.clone().requires_grad_(True) for k, v in read_safetensors(f"{d}/model.safetensors").items()}
    ref = read_safetensors(f"{d}/attnlab.safetensors")
    C, H, pad = cfg["d_model"], cfg["heads"], cfg["pad_id"]
    D = C // H
    B, S, T = batch["B"], batch["S"], batch["T"]
    src = torch.tensor(batch["src"]).view(B, S)
    tgt_in = torch.tensor(batch["tgt_in"]).view(B, T)
    tgt_out = torch.tensor(batch["tgt_out"]).view(B, T)

    def pe(n):
        p = torch.zeros(n, C)
        pos = torch.arange(n, dtype=torch.float64).unsqueeze(1)
        i = torch.arange(0, C, 2, dtype=torch.float64)
        freq = torch.pow(10000.0, -i / C)
        p[:, 0::2] = torch.sin(pos * freq).float()
        p[:, 1::2] = torch.cos(pos * freq).float()[:, : C // 2]
        return p

    def lin(x, name):
        return x @ w[name + ".weight"] + w[name + ".bias"]

    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (C,), w[name + ".weight"], w[name + ".bias"], 1e-5)

    def heads(x):
        return x.view(x.shape[0], x.shape[1], H, D).transpose(1, 2)

    def mha(x, kv, mask, name, spec):
        v_ = variant(spec)
        q = heads(lin(x, name + ".wq"))
        k = q if (v_["qq"] and x is kv) else heads(lin(kv, name + (".wq" if v_["qq"] else ".wk")))
        if v_["normk"]:
            k = k / (k.norm(dim=-1, keepdim=True) + 1e-6)
        v = heads(lin(kv, name + ".wv")) if not v_["noV"] else heads(kv)
        s = q @ k.transpose(-1, -2) / math.sqrt(D) + mask.unsqueeze(1)
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], C)
        return lin(o, name + ".wo") if not v_["noO"] else o

    def ff(x, name):
        return lin(torch.relu(lin(x, name + ".w1")), name + ".w2")

    ninf = float("-inf")
    src_keys = torch.where(src == pad, ninf, 0.0)  # (B,S)

    def noself(m):
        eye = torch.eye(m.shape[-1], dtype=torch.bool)
        visible = (m == 0)
        others = (visible & ~eye).any(-1, keepdim=True)
        return torch.where(eye & others, torch.tensor(ninf), m)

    E = w["emb.weight"]
    arch = cfg.get("arch", "seq2seq")
    smoothing = cfg["label_smoothing"]

    def stack(ids, n, prefix, mask, spec, layers):  # lm and mlm: one stack of self-attention blocks
        x = E[ids] * math.sqrt(C) + pe(n)
        for i in range(layers):
            p = f"{prefix}.{i}"
            h = ln(x, p + ".ln1")
            x = x + mha(h, h, mask, p + ".self_attn", spec)
            x = x + ff(ln(x, p + ".ln2"), p + ".ff")
        return ln(x, prefix + ".ln")

    if arch == "lm":  # decoder-only: bos y1..yn predicts y1..yn eos, causal, no cross-attention
        causal = torch.triu(torch.full((T, T), ninf), 1).unsqueeze(0).expand(B, T, T).clone()
        if variant(cfg["dec_self"])["noself"]:
            causal = noself(causal)
        y = stack(tgt_in, T, "dec", causal, cfg["dec_self"], cfg["dec_layers"])
        logits, targets = y.reshape(B * T, C) @ E.t(), tgt_out.reshape(-1)
    elif arch == "mlm":  # encoder-only: the masked input attnlab drew (batch "src"), its targets
        mask = src_keys.unsqueeze(1).expand(B, S, S).clone()
        if variant(cfg["enc_self"])["noself"]:
            mask = noself(mask)
        y = stack(src, S, "enc", mask, cfg["enc_self"], cfg["enc_layers"])
        logits, targets = y.reshape(B * S, C) @ E.t(), torch.tensor(batch["targets"])
    if arch != "seq2seq":
        loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=pad, label_smoothing=smoothing)
        loss.backward()
        return compare(loss, ref, w)

    enc_mask = src_keys.unsqueeze(1).expand(B, S, S).clone()
    if variant(cfg["enc_self"])["noself"]:
        enc_mask = noself(enc_mask)
    causal = torch.triu(torch.full((T, T), ninf), 1).unsqueeze(0).expand(B, T, T).clone()
    if variant(cfg["dec_self"])["noself"]:
        causal = noself(causal)
    cross_mask = src_keys.unsqueeze(1).expand(B, T, S)

    x = E[src] * math.sqrt(C) + pe(S)
    for i in range(cfg["enc_layers"]):
        p = f"enc.{i}"
        h = ln(x, p + ".ln1")
        x = x + mha(h, h, enc_mask, p + ".self_attn", cfg["enc_self"])
        x = x + ff(ln(x, p + ".ln2"), p + ".ff")
    memory = ln(x, "enc.ln")
    y = E[tgt_in] * math.sqrt(C) + pe(T)
    for i in range(cfg["dec_layers"]):
        p = f"dec.{i}"
        h = ln(y, p + ".ln1")
        y = y + mha(h, h, causal, p + ".self_attn", cfg["dec_self"])
        y = y + mha(ln(y, p + ".ln2"), memory, cross_mask, p + ".cross_attn", cfg["cross"])
        y = y + ff(ln(y, p + ".ln3"), p + ".ff")
    y = ln(y, "dec.ln")
    logits = y.reshape(B * T, C) @ E.t()
    loss = torch.nn.functional.cross_entropy(logits, tgt_out.reshape(-1), ignore_index=pad,
                                             label_smoothing=cfg["label_smoothing"])
    loss.backward()
    return compare(loss, ref, w)


def compare(loss, ref, w):
    report = {"loss_torch": loss.item(), "loss_attnlab": ref["loss"].item()}
    worst = abs(loss.item() - ref["loss"].item()) / abs(loss.item())
    report["loss_rel_err"] = worst
    # Relative error per parameter: max |attnlab - torch| / max |torch|. A parameter whose true
    # gradient is zero (the key bias: softmax ignores a constant added to a whole row of scores)
    # holds only rounding noise, so its denominator is floored at 1e-3 of the largest gradient.
    grads = {n: (t.grad if t.grad is not None else torch.zeros_like(t)) for n, t in w.items()}
    floor = 1e-3 * max(g.abs().max().item() for g in grads.values())
    per = {}
    for name, g in grads.items():
        a = ref["grad/" + name]
        rel = ((a - g).abs().max() / max(g.abs().max().item(), floor)).item()
        per[name] = rel
        worst = max(worst, rel)
    report["max_rel_err"] = worst
    report["worst_param"] = max(per, key=per.get)
    report["params"] = len(per)
    print(json.dumps(report))
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
