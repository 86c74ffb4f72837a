#!/usr/bin/env python3
"""bench/pytorch_peer.py — the attnlab bench model in PyTorch (CPU), same flags, same output line.

  python3 bench/pytorch_peer.py --d 256 --heads 4 --layers 3 --ff 1024 --vocab 8000 --batch 64 --len 24 --steps 20 --threads 2

Pre-LN encoder-decoder (torch.nn.Transformer, norm_first=True), tied embeddings, sinusoidal
positions, label-smoothed cross-entropy, Adam: the same architecture and training step as
`attnlab bench`. --variant qq shares W_q and W_k in self-attention, written out by hand.
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SharedQKSelfAttention(nn.Module):
    """Multi-head self-attention with W_k = W_q (QQᵀ scores)."""

    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.wq, self.wv, self.wo = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.drop = dropout

    def forward(self, x, mask):
        B, T, C = x.shape
        q = self.wq(x).view(B, T, self.h, self.dk).transpose(1, 2)
        v = self.wv(x).view(B, T, self.h, self.dk).transpose(1, 2)
        s = q @ q.transpose(-1, -2) / math.sqrt(self.dk)
        if mask is not None:
            s = s + mask
        p = F.dropout(torch.softmax(s, -1), self.drop, self.training)
        return self.wo((p @ v).transpose(1, 2).reshape(B, T, C))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.d = a.d
        self.emb = nn.Embedding(a.vocab, a.d)
        self.tr = nn.Transformer(a.d, a.heads, a.layers, a.layers, a.ff, 0.1, batch_first=True, norm_first=True)
        if a.variant == "qq":
            for layer in list(self.tr.encoder.layers) + list(self.tr.decoder.layers):
                layer.self_attn = SharedQKSelfAttention(a.d, a.heads, 0.1)
                layer._sa_block = (lambda lyr: lambda x, m, kpm, is_causal=False: lyr.dropout1(lyr.self_attn(x, m)))(layer)
        pe = torch.zeros(512, a.d)
        pos = torch.arange(512).unsqueeze(1)
        i = torch.arange(0, a.d, 2)
        pe[:, 0::2] = torch.sin(pos * torch.pow(10000.0, -i / a.d))
        pe[:, 1::2] = torch.cos(pos * torch.pow(10000.0, -i / a.d))
        self.register_buffer("pe", pe)

    def forward(self, src, tgt):
        T = tgt.shape[1]
        s = self.emb(src) * math.sqrt(self.d) + self.pe[: src.shape[1]]
        t = self.emb(tgt) * math.sqrt(self.d) + self.pe[:T]
        causal = torch.triu(torch.full((T, T), float("-inf")), 1)
        h = self.tr(s, t, tgt_mask=causal)
        return h @ self.emb.weight.t()


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(d=256, heads=4, layers=3, ff=1024, vocab=8000, batch=64, len=24, steps=20, threads=2).items():
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--variant", default="qk", choices=["qk", "qq"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = Model(a)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    total = 0.0
    for step in range(-2, a.steps):
        src = torch.randint(4, a.vocab, (a.batch, a.len))
        tin = torch.randint(4, a.vocab, (a.batch, a.len))
        tout = torch.randint(4, a.vocab, (a.batch, a.len))
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = m(src, tin)
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), tout.reshape(-1), label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if step >= 0:
            total += time.perf_counter() - t0
    tok = a.batch * a.len * a.steps / total
    params = sum(p.numel() for p in m.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {a.variant} d={a.d} heads={a.heads} layers={a.layers}+{a.layers} ff={a.ff} vocab={a.vocab} "
          f"batch={a.batch}x{a.len} threads={a.threads}: {tok:.0f} target tok/s, {1000 * total / a.steps:.1f} ms/step, "
          f"max RSS {rss:.0f} MiB, params {params} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
