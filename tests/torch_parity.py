#!/usr/bin/env python3
"""tests/torch_parity.py — an attnlab model rebuilt in PyTorch: loss and every gradient compared.

Usage: torch_parity.py DIR
DIR holds what tests/test_models.cpp (or test_lm.cpp) wrote: config.json (the model config),
model.safetensors (weights), batch.json (src, tgt_in, tgt_out, B, S, T; for an mlm, src is the
masked input and "targets" the tokens to predict), attnlab.safetensors (attnlab's loss and the
gradient of every parameter, named "grad/<param>"). The PyTorch model is tools/attnlab_torch.py's
(pre-LN or post-LN encoder-decoder, decoder-only "lm" or encoder-only "mlm", tied embeddings,
sinusoidal positions, the variant of each attention site), written from the paper-level
description, not from attnlab's code. Prints one JSON line; exits 1 if the loss or any gradient's
relative error exceeds 1e-4.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import attnlab_torch as at  # noqa: E402


def main(d):
    cfg = at.ModelConfig.from_json(json.load(open(f"{d}/config.json")), f"{d}/config.json")
    batch = json.load(open(f"{d}/batch.json"))
    ref, _ = at.read_safetensors(f"{d}/attnlab.safetensors")
    model = at.build_model(cfg)
    at.load_weights(model, f"{d}/model.safetensors")
    model.eval()  # no dropout; the loss below is the training loss (label smoothing)
    B = batch["B"]
    b = {k: torch.tensor(batch[k]).view(B, -1) for k in ("src", "tgt_in", "tgt_out")}
    if cfg.arch == "mlm":  # batch "src" is the masked input attnlab drew, "targets" what it predicts
        b["input"], b["targets"] = b["src"], torch.tensor(batch["targets"]).view(B, -1)
    logits, targets = model.batch_logits(b)
    loss = F.cross_entropy(logits, targets, ignore_index=cfg.pad_id, label_smoothing=cfg.label_smoothing)
    loss.backward()
    report = at.gradient_report(model, loss, ref)
    print(json.dumps(report))
    return 0 if report["max_rel_err"] <= at.TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
