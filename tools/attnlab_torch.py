#!/usr/bin/env python3
"""tools/attnlab_torch.py — an attnlab run as a plain PyTorch module, and a check that PyTorch
computes what attnlab computed with the run's weights.

    tools/attnlab_torch.py runs/qq                    # builds the module, loads the weights, says what it loaded
    tools/attnlab_torch.py runs/qq runs/qk --check    # and checks: validation loss, gradients, greedy translations

As a library (tests/torch_parity.py is one user):

    sys.path.insert(0, "tools"); import attnlab_torch as at
    run = at.load_run("runs/qq")                      # run.model: an nn.Module; run.cfg: its ModelConfig
    logits = run.model(src, tgt_in)                   # seq2seq (B,T,V); lm: run.model(tgt_in); mlm: run.model(masked)
    ids = at.greedy(run.model, [[12, 7, 99, 2]])      # seq2seq: greedy translations as token ids

The modules are written from the models' paper-level description (docs/checkpoints.md, "PyTorch"):
pre-LN (or post-LN) transformer blocks, sinusoidal positions, one embedding tied to the output
layer; seq2seq is the encoder-decoder, lm its decoder without cross-attention, mlm its encoder.
Each attention site's variant (qk, qq, +noself, +normk, +noV, +noO) comes from config.json. A
parameter has attnlab's name as its module path (enc.0.self_attn.wq.weight); attnlab stores a
Linear weight as (in, out), PyTorch as (out, in), so those are transposed on loading.

--check runs `attnlab export` (train/export.h) for the run's own batches, masks and gradients, and
requires (a) the validation loss within 1e-4 (relative) of the one attnlab recorded for these
weights, (b) every parameter's gradient of one batch within 1e-4 (relative) of PyTorch's in
float64 (check_gradients), and (c) for seq2seq, the test sources tokenized alike and the greedy
translations equal, except at near ties (near_tie_tolerance).
Exit status: 0 every check agrees; 1 a check disagrees; 2 nothing could be checked (bad usage, a
file that is not what a run holds, attnlab failing), with one line naming the file.
"""
import argparse
import copy
import dataclasses
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TOLERANCE = 1e-4  # relative: the validation loss, every gradient (and the logits' near-tie rule below)


class RunError(Exception):
    """Input the tool cannot use: the message names the file and what was expected."""


# ---- files ------------------------------------------------------------------------------

def read_safetensors(path):
    """{name: float32 tensor} and the metadata of a safetensors file, checked as attnlab's reader checks it."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise RunError(f"{path}: cannot read: {e.strerror}")
    if len(raw) < 8:
        raise RunError(f"{path}: truncated: {len(raw)} bytes, expected a safetensors file (8-byte header length, header, data)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise RunError(f"{path}: truncated: the header length says {n} bytes, the file holds {len(raw) - 8} after it")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError:
        raise RunError(f"{path}: not a safetensors file: its header is not JSON")
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(header, dict):
        raise RunError(f"{path}: not a safetensors file: its header is not a JSON object")
    out, end = {}, 0
    for name, info in header.items():
        if not isinstance(info, dict) or info.get("dtype") != "F32":
            raise RunError(f"{path}: tensor '{name}': expected dtype F32 (what attnlab writes), got {info.get('dtype') if isinstance(info, dict) else info!r}")
        a, b = info["data_offsets"]
        shape = info["shape"]
        if b - a != 4 * math.prod(shape) or a < 0:
            raise RunError(f"{path}: tensor '{name}': data offsets {a}..{b} do not hold shape {shape} of F32")
        if b > len(data):
            raise RunError(f"{path}: truncated: tensor '{name}' ends at byte {b} of the data, the file holds {len(data)}")
        out[name] = torch.from_numpy(np.frombuffer(data, dtype="<f4", count=b // 4 - a // 4, offset=a).reshape(shape).copy())
        end = max(end, b)
    if end != len(data):
        raise RunError(f"{path}: {len(data) - end} bytes after the last tensor's data (expected a file that ends with it)")
    return out, meta


def read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path}: no such file (expected {what})")
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: not readable JSON ({e}); expected {what}")


# ---- the model configuration --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Variant:
    """One attention site's variant, from its spec in config.json ("qq+noself", "qk+noV+noO")."""
    shared_qk: bool = False  # qq: W_k = W_q
    noself: bool = False     # a position attends to itself only when nothing else is visible
    normk: bool = False      # keys of unit length
    value_proj: bool = True  # False: noV, V = X
    out_proj: bool = True    # False: noO

    @staticmethod
    def parse(spec, where):
        parts = spec.split("+") if isinstance(spec, str) else [None]
        if parts[0] not in ("qk", "qq") or any(p not in ("noself", "normk", "noV", "noO", "nogram") for p in parts[1:]):
            raise RunError(f"{where}: unknown attention variant {spec!r} (expected qk or qq, optionally followed by "
                           "+noself, +normk, +noV, +noO)")
        # nogram: attnlab computes QQᵀ by a general product instead of ssyrk; the same scores.
        return Variant(parts[0] == "qq", "noself" in parts, "normk" in parts, "noV" not in parts, "noO" not in parts)


@dataclasses.dataclass
class ModelConfig:
    arch: str
    vocab: int
    d_model: int
    heads: int
    enc_layers: int
    dec_layers: int
    d_ff: int
    dropout: float
    gelu: bool
    post_ln: bool
    max_len: int
    pad_id: int
    bos_id: int
    eos_id: int
    label_smoothing: float
    preset: str
    enc_self: Variant
    dec_self: Variant
    cross: Variant

    @staticmethod
    def from_json(j, where):
        """From attnlab's model config (config.json's "model"; ModelConfig::to_json). `where` names it in errors."""
        if not isinstance(j, dict):
            raise RunError(f"{where}: expected attnlab's model configuration (an object with d_model, heads, ...)")

        def get(key, kind, default=None):
            if key not in j:
                if default is not None:
                    return default
                raise RunError(f"{where}: no '{key}' (expected attnlab's model configuration, as attnlab train writes it)")
            v = j[key]
            if kind is int and isinstance(v, bool) or not isinstance(v, kind if kind is not float else (int, float)):
                raise RunError(f"{where}: '{key}' is {v!r}, expected {kind.__name__}")
            return v

        arch = get("arch", str, "seq2seq")  # absent: a translation model
        if arch not in ("seq2seq", "lm", "mlm"):
            raise RunError(f"{where}: unknown arch {arch!r} (expected seq2seq, lm or mlm)")
        c = ModelConfig(arch=arch, vocab=get("vocab", int), d_model=get("d_model", int), heads=get("heads", int),
                        enc_layers=get("enc_layers", int), dec_layers=get("dec_layers", int), d_ff=get("d_ff", int),
                        dropout=float(get("dropout", float)), gelu=get("gelu", bool), post_ln=get("post_ln", bool),
                        max_len=get("max_len", int), pad_id=get("pad_id", int), bos_id=get("bos_id", int),
                        eos_id=get("eos_id", int), label_smoothing=float(get("label_smoothing", float, 0.1)),
                        preset=get("preset", str), enc_self=Variant.parse(j.get("enc_self"), f"{where}: enc_self"),
                        dec_self=Variant.parse(j.get("dec_self"), f"{where}: dec_self"),
                        cross=Variant.parse(j.get("cross"), f"{where}: cross"))
        if c.d_model <= 0 or c.heads <= 0 or c.d_model % c.heads:
            raise RunError(f"{where}: d_model {c.d_model} is not a positive multiple of heads {c.heads}")
        return c


# ---- the layers -------------------------------------------------------------------------
# Shapes: B sentences, T (query) and S (key) positions, C = d_model, H heads of D = C/H, V vocab.
# Masks are additive (B,Tq,Tk): 0 visible, -inf hidden.

def padding_mask(keys, pad, Tq):  # keys (B,S) -> (B,Tq,S): padding keys hidden
    return torch.where(keys == pad, float("-inf"), 0.0).unsqueeze(1).expand(-1, Tq, -1)


def causal_mask(B, T):  # (B,T,T): keys after the query hidden
    return torch.triu(torch.full((T, T), float("-inf")), 1).expand(B, T, T)


def no_self(mask):
    """noself: the diagonal hidden in every row that has another visible key."""
    eye = torch.eye(mask.shape[-1], dtype=torch.bool)
    others = ((mask == 0) & ~eye).any(-1, keepdim=True)
    return torch.where(eye & others, torch.tensor(float("-inf")), mask)


def positions(T, C):
    """Sinusoidal positions (T,C): PE[t,2i] = sin(t / 10000^(2i/C)), PE[t,2i+1] = cos(...), in double, then float."""
    t = torch.arange(T, dtype=torch.float64).unsqueeze(1)
    freq = torch.pow(10000.0, -torch.arange(0, C, 2, dtype=torch.float64) / C)
    pe = torch.zeros(T, C, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq)[:, : C // 2]
    return pe.float()


class Attention(nn.Module):
    """Multi-head attention at one site: wq, wk (none for qq), wv (none for noV), wo (none for noO)."""

    def __init__(self, C, H, v: Variant, dropout):
        super().__init__()
        self.H, self.v = H, v
        self.wq = nn.Linear(C, C)
        self.wk = None if v.shared_qk else nn.Linear(C, C)
        self.wv = nn.Linear(C, C) if v.value_proj else None
        self.wo = nn.Linear(C, C) if v.out_proj else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x, kv, mask, is_self):  # x (B,Tq,C) attends over kv (B,Tk,C)
        B, Tq, C = x.shape
        D = C // self.H
        heads = lambda t: t.view(B, t.shape[1], self.H, D).transpose(1, 2)  # (B,H,T,D)
        q = heads(self.wq(x))
        if self.v.shared_qk and is_self:
            k = q  # qq self-attention: the keys are the queries, S = Q Qᵀ/√D
        else:
            k = heads((self.wq if self.v.shared_qk else self.wk)(kv))  # qq elsewhere: K = kv W_q
        if self.v.normk:
            k = k / (k.norm(dim=-1, keepdim=True) + 1e-6)
        v = heads(self.wv(kv) if self.wv is not None else kv)  # noV: V = X
        if self.v.noself and is_self:
            mask = no_self(mask)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + mask.unsqueeze(1)  # (B,H,Tq,Tk)
        o = (self.drop(torch.softmax(s, dim=-1)) @ v).transpose(1, 2).reshape(B, Tq, C)
        return self.wo(o) if self.wo is not None else o  # noO: no output projection


class ReLUWithSides(torch.autograd.Function):
    """ReLU whose derivative is a given 0/1 mask: [h > 0], except where another side is given."""

    @staticmethod
    def forward(ctx, h, derivative):
        ctx.save_for_backward(derivative)
        return torch.relu(h)

    @staticmethod
    def backward(ctx, dout):
        (derivative,) = ctx.saved_tensors
        return dout * derivative, None


class FeedForward(nn.Module):  # w2(act(w1 x)), ReLU or GELU (tanh approximation)
    def __init__(self, C, F_, gelu, dropout):
        super().__init__()
        self.w1, self.w2, self.gelu, self.drop = nn.Linear(C, F_), nn.Linear(F_, C), gelu, nn.Dropout(dropout)
        self.relu_sides = None  # (flat index, side, near): the side of 0 attnlab's inputs took (use_relu_sides)
        self.other_side = 0     # how many of those PyTorch's own inputs had on the other side

    def forward(self, x):
        h = self.w1(x)
        return self.w2(self.drop(F.gelu(h, approximate="tanh") if self.gelu else self.relu(h)))

    def relu(self, h):
        if self.relu_sides is None:
            return torch.relu(h)
        index, positive, near = self.relu_sides
        derivative = (h > 0).flatten()
        close = h.detach().flatten()[index].abs() <= near * h.detach().abs().max()  # near 0 in PyTorch too
        self.other_side = int(((derivative[index] != positive) & close).sum())
        derivative[index[close]] = positive[close]
        return ReLUWithSides.apply(h, derivative.view_as(h).to(h.dtype))


class Sublayers(nn.Module):
    """Residual sub-layers: pre-LN x + f(LN(x)), or post-LN LN(x + f(x))."""

    def residual(self, x, ln, f):
        if self.post_ln:
            return ln(x + self.drop(f(x)))
        return x + self.drop(f(ln(x)))


class Block(Sublayers):
    """Self-attention and feed-forward: an encoder layer, or a decoder-only model's layer."""

    def __init__(self, cfg, v):
        super().__init__()
        C = cfg.d_model
        self.post_ln, self.drop = cfg.post_ln, nn.Dropout(cfg.dropout)
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.self_attn = Attention(C, cfg.heads, v, cfg.dropout)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.ff = FeedForward(C, cfg.d_ff, cfg.gelu, cfg.dropout)

    def forward(self, x, mask):
        x = self.residual(x, self.ln1, lambda h: self.self_attn(h, h, mask, True))
        return self.residual(x, self.ln2, self.ff)


class DecoderLayer(Sublayers):
    """Causal self-attention, cross-attention over the encoder's output, feed-forward."""

    def __init__(self, cfg):
        super().__init__()
        C = cfg.d_model
        self.post_ln, self.drop = cfg.post_ln, nn.Dropout(cfg.dropout)
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.self_attn = Attention(C, cfg.heads, cfg.dec_self, cfg.dropout)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.cross_attn = Attention(C, cfg.heads, cfg.cross, cfg.dropout)
        self.ln3 = nn.LayerNorm(C, eps=1e-5)
        self.ff = FeedForward(C, cfg.d_ff, cfg.gelu, cfg.dropout)

    def forward(self, y, memory, self_mask, cross_mask):
        y = self.residual(y, self.ln1, lambda h: self.self_attn(h, h, self_mask, True))
        y = self.residual(y, self.ln2, lambda h: self.cross_attn(h, memory, cross_mask, False))
        return self.residual(y, self.ln3, self.ff)


class Stack(nn.Module):
    """Layers named 0, 1, ... and, pre-LN, a final LayerNorm named ln: the module paths
    enc.0.self_attn.wq and enc.ln are attnlab's parameter names."""

    def __init__(self, layers, C, final_ln):
        super().__init__()
        self.n = len(layers)
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)
        self.ln = nn.LayerNorm(C, eps=1e-5) if final_ln else None

    def layers(self):
        return [getattr(self, str(i)) for i in range(self.n)]

    def final(self, x):
        return self.ln(x) if self.ln is not None else x


class Model(nn.Module):
    """What the three share: the token embedding emb (V,C), scaled by √C, plus positions; logits h Eᵀ."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def embed(self, ids):  # (B,T) -> (B,T,C)
        C = self.cfg.d_model
        return self.drop(self.emb(ids) * math.sqrt(C) + positions(ids.shape[1], C))

    def logits(self, h):  # (B,T,C) -> (B,T,V), through the tied embedding
        return h @ self.emb.weight.t()


class Seq2Seq(Model):
    """--arch seq2seq: the encoder-decoder translation model."""

    def __init__(self, cfg):
        super().__init__(cfg)
        C, pre = cfg.d_model, not cfg.post_ln
        self.enc = Stack([Block(cfg, cfg.enc_self) for _ in range(cfg.enc_layers)], C, pre and cfg.enc_layers > 0)
        self.dec = Stack([DecoderLayer(cfg) for _ in range(cfg.dec_layers)], C, pre)

    def encode(self, src):  # (B,S) -> memory (B,S,C)
        x, mask = self.embed(src), padding_mask(src, self.cfg.pad_id, src.shape[1])
        for layer in self.enc.layers():
            x = layer(x, mask)
        return self.enc.final(x)

    def decode(self, tgt_in, memory, src):  # (B,T) -> hidden states (B,T,C)
        B, T = tgt_in.shape
        y, self_mask, cross_mask = self.embed(tgt_in), causal_mask(B, T), padding_mask(src, self.cfg.pad_id, T)
        for layer in self.dec.layers():
            y = layer(y, memory, self_mask, cross_mask)
        return self.dec.final(y)

    def forward(self, src, tgt_in):
        return self.logits(self.decode(tgt_in, self.encode(src), src))

    def batch_logits(self, b):  # an exported batch: logits (N,V) and the targets they are scored against
        return self(b["src"], b["tgt_in"]).flatten(0, 1), b["tgt_out"].flatten()


class LanguageModel(Model):
    """--arch lm: decoder-only, causal self-attention blocks named dec.N, no cross-attention."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.dec = Stack([Block(cfg, cfg.dec_self) for _ in range(cfg.dec_layers)], cfg.d_model, not cfg.post_ln)

    def forward(self, ids):  # bos y1 .. yn -> logits predicting y1 .. yn eos
        x = self.embed(ids)
        mask = causal_mask(*ids.shape)  # padding sits after the last token: no real position sees it
        for layer in self.dec.layers():
            x = layer(x, mask)
        return self.logits(self.dec.final(x))

    def batch_logits(self, b):
        return self(b["tgt_in"]).flatten(0, 1), b["tgt_out"].flatten()


class MaskedLM(Model):
    """--arch mlm: encoder-only, self-attention blocks named enc.N over the masked input."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.enc = Stack([Block(cfg, cfg.enc_self) for _ in range(cfg.enc_layers)], cfg.d_model, not cfg.post_ln)

    def forward(self, masked):  # (B,S) input with its chosen tokens masked -> logits (B,S,V)
        x, mask = self.embed(masked), padding_mask(masked, self.cfg.pad_id, masked.shape[1])
        for layer in self.enc.layers():
            x = layer(x, mask)
        return self.logits(self.enc.final(x))

    def batch_logits(self, b):  # the batch's masked input and targets (attnlab draws the mask)
        return self(b["input"]).flatten(0, 1), b["targets"].flatten()


def build_model(cfg):
    return {"seq2seq": Seq2Seq, "lm": LanguageModel, "mlm": MaskedLM}[cfg.arch](cfg)


def linear_weights(model):
    """The names of the Linear weights: attnlab stores them (in, out), PyTorch (out, in)."""
    return {name + ".weight" for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def load_weights(model, path):
    """Loads attnlab's safetensors into the model (Linear weights transposed); returns the file's metadata."""
    tensors, meta = read_safetensors(path)
    own, linear = dict(model.named_parameters()), linear_weights(model)
    for name in own:
        if name not in tensors:
            raise RunError(f"{path}: has no tensor '{name}' — weights of another variant or model than config.json "
                           f"describes (preset {model.cfg.preset})?")
    for name in tensors:
        if name not in own:
            raise RunError(f"{path}: tensor '{name}' is no parameter of the model config.json describes "
                           f"(preset {model.cfg.preset}) — weights of another variant or model?")
    with torch.no_grad():
        for name, p in own.items():
            t = tensors[name].t() if name in linear else tensors[name]
            if t.shape != p.shape:
                raise RunError(f"{path}: tensor '{name}' has shape {list(tensors[name].shape)}, the model config.json "
                               f"describes needs {list(p.shape if name not in linear else p.t().shape)}")
            p.copy_(t)
    return meta


def use_relu_sides(model, listed, near):
    """At each ReLU input attnlab exported as near 0 (within `near` of the largest |input|, in
    PyTorch too), takes the side attnlab's input was on for the derivative; elsewhere [h > 0].
    `listed`: attnlab export's relu_near_zero ({node: "dec.0.ff.act", index, positive}); [] resets."""
    ffs = {name: m for name, m in model.named_modules() if isinstance(m, FeedForward)}
    for m in ffs.values():
        m.relu_sides, m.other_side = None, 0
    for r in listed:
        name = r["node"][: -len(".act")] if r["node"].endswith(".act") else r["node"]
        if name not in ffs:
            raise RunError(f"attnlab export lists a ReLU '{r['node']}' that the model has no feed-forward layer for")
        ffs[name].relu_sides = (torch.tensor(r["index"], dtype=torch.long), torch.tensor(r["positive"], dtype=torch.bool),
                                near)
    return ffs.values()


def grads_in_attnlab_layout(model):
    """{name: gradient} of every parameter, Linear weights transposed back to (in, out)."""
    linear = linear_weights(model)
    out = {}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out[name] = g.t() if name in linear else g
    return out


# ---- a run directory --------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    dir: str
    config: dict       # config.json
    cfg: ModelConfig   # its "model"
    model: Model
    weights: str       # the safetensors file loaded
    step: object       # the step its metadata names, or None
    which: str         # best or last


def weights_file(d, which):
    """The weights attnlab loads for `which` (run_weights_file in train/run_dir.cpp)."""
    if which == "best":
        return os.path.join(d, "model.best.safetensors")
    last = read_json(os.path.join(d, "last.json"), "the pointer to the newest checkpoint, {\"dir\": ...}")
    if not isinstance(last, dict) or not isinstance(last.get("dir"), str):
        raise RunError(f"{os.path.join(d, 'last.json')}: expected {{\"dir\": \"checkpoints/step-N\", ...}}")
    return os.path.join(d, last["dir"], "model.safetensors")


def load_run(d, which="best"):
    """The run in directory d: its config and the PyTorch model holding its weights (eval mode)."""
    if not os.path.isdir(d):
        raise RunError(f"{d}: not a directory (expected a run directory, as attnlab train --out writes)")
    path = os.path.join(d, "config.json")
    if not os.path.exists(path):
        raise RunError(f"{d}: not a run directory (no config.json)")
    config = read_json(path, "a run's configuration, as attnlab train writes it")
    if not isinstance(config, dict) or "model" not in config:
        raise RunError(f"{path}: no 'model' object (expected a run's configuration, as attnlab train writes it)")
    cfg = ModelConfig.from_json(config["model"], f"{path}: model")
    model = build_model(cfg)
    weights = weights_file(d, which)
    meta = load_weights(model, weights)
    step = meta.get("step") if isinstance(meta, dict) else None
    return Run(d, config, cfg, model.eval(), weights, int(step) if step is not None else None, which)


# ---- tokenizers (the test sources, and translations as text) --------------------------------

class Symbols:
    """tokenizer.symbols: whitespace-separated symbols, id 4 + the line's index (data/tokenizer.cpp)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.symbols = [s for s in f.read().split("\n") if s]
        self.index = {s: i + 4 for i, s in enumerate(self.symbols)}

    def encode(self, text):  # C's isspace: what attnlab's stream extraction splits on
        return [self.index.get(w, 3) for w in text.translate({ord(c): " " for c in "\t\n\v\f\r"}).split(" ") if w]

    def decode(self, ids):
        return " ".join("<unk>" if i == 3 or i - 4 >= len(self.symbols) else self.symbols[i - 4] for i in ids if i >= 3)


class SentencePiece:
    def __init__(self, path):
        try:
            import sentencepiece
        except ImportError:
            raise RunError(f"{path}: reading it needs python3-sentencepiece, which is not installed")
        self.sp = sentencepiece.SentencePieceProcessor(model_file=path)

    def encode(self, text):
        return self.sp.encode(text)

    def decode(self, ids):
        return self.sp.decode([i for i in ids if i >= 3])


def load_tokenizer(d):
    prefix = os.path.join(d, "tokenizer")
    if os.path.exists(prefix + ".model"):
        return SentencePiece(prefix + ".model")
    if os.path.exists(prefix + ".symbols"):
        return Symbols(prefix + ".symbols")
    raise RunError(f"{prefix}.model: no tokenizer (expected {prefix}.model or {prefix}.symbols)")


# ---- greedy decoding --------------------------------------------------------------------

def next_logits(model, src, prefixes, memory=None):
    """The logits (B,V) of the token after each prefix (B,T) of the targets, pad and bos excluded."""
    memory = model.encode(src) if memory is None else memory
    z = model.logits(model.decode(prefixes, memory, src))[:, -1, :].clone()
    z[:, [model.cfg.pad_id, model.cfg.bos_id]] = float("-inf")  # never chosen (models/decode.cpp)
    return z


@torch.no_grad()
def greedy(model, srcs, batch=32):
    """Greedy translations (token ids without bos and eos) of sources ending in eos: each sentence's
    longest is 2·len + 10 tokens, at most max_len - 1, as attnlab's greedy search decides."""
    cfg, out = model.cfg, [None] * len(srcs)
    for at in range(0, len(srcs), batch):
        rows = list(range(at, min(at + batch, len(srcs))))
        S = max(len(srcs[i]) for i in rows)
        src = torch.tensor([srcs[i] + [cfg.pad_id] * (S - len(srcs[i])) for i in rows])
        memory = model.encode(src)
        longest = [max(1, min(2 * len(srcs[i]) + 10, cfg.max_len - 1)) for i in rows]
        hyps = [[cfg.bos_id] for _ in rows]
        for t in range(max(longest)):
            choice = next_logits(model, src, torch.tensor(hyps), memory).argmax(-1).tolist()
            for r, i in enumerate(rows):
                if out[i] is not None:
                    hyps[r].append(cfg.pad_id)  # finished: a placeholder keeps the batch rectangular
                    continue
                if choice[r] == cfg.eos_id:
                    out[i] = hyps[r][1:]
                    hyps[r].append(cfg.pad_id)
                    continue
                hyps[r].append(choice[r])
                if t + 1 >= longest[r]:
                    out[i] = hyps[r][1:]
            if all(out[i] is not None for i in rows):
                break
    return out


# ---- the checks -------------------------------------------------------------------------

def tensors_of(batch):  # an exported batch's token ids as (B, S or T) tensors
    return {k: torch.tensor(batch[k]).view(batch["B"], -1) for k in ("src", "tgt_in", "tgt_out", "input", "targets")
            if k in batch}


def rel_err(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def gradient_report(model, loss, ref):
    """Compares the loss and the gradients backward() left in the model against attnlab's (ref:
    "loss" and "grad/NAME" in attnlab's layout). Relative error per parameter: max |attnlab - torch|
    / max |torch|. A parameter whose true gradient is zero (the key bias: softmax ignores a constant
    added to a whole row of scores) holds only rounding noise, so its denominator is floored at 1e-3
    of the largest gradient."""
    grads = grads_in_attnlab_layout(model)
    missing = [n for n in grads if "grad/" + n not in ref]
    if missing:
        raise RunError(f"attnlab's gradients hold no 'grad/{missing[0]}' (of another model?)")
    floor = 1e-3 * max(g.abs().max().item() for g in grads.values())
    per = {n: ((ref["grad/" + n] - g).abs().max() / max(g.abs().max().item(), floor)).item() for n, g in grads.items()}
    worst = max(per, key=per.get)
    report = {"loss_torch": loss.item(), "loss_attnlab": ref["loss"].item(),
              "loss_rel_err": rel_err(ref["loss"].item(), loss.item()), "grad_rel_err": per[worst], "worst_param": worst,
              "params": len(per)}
    report["max_rel_err"] = max(report["loss_rel_err"], per[worst])
    return report


def recorded_valid_loss(run):
    """The validation loss attnlab recorded for the loaded weights: (value, where, rounding), or None.
    results.json's is the best weights' (train/trainer.cpp, finish); metrics.csv's rows, at each
    evaluation, are printed with 5 decimals."""
    results = os.path.join(run.dir, "results.json")
    if run.which == "best" and os.path.exists(results):
        r = read_json(results, "a finished run's summary")
        if isinstance(r, dict) and isinstance(r.get("valid_loss"), (int, float)):
            return r["valid_loss"], "results.json", 0.0
    metrics = os.path.join(run.dir, "metrics.csv")
    if run.step is None or not os.path.exists(metrics):
        return None
    with open(metrics, encoding="utf-8") as f:
        head = f.readline().strip().split(",")
        col = head.index("valid_loss") if "valid_loss" in head else None
        for line in f:
            row = line.strip().split(",")
            if col is not None and row[0] == str(run.step) and len(row) > col and row[col]:
                return float(row[col]), f"metrics.csv, step {run.step}", 5e-6
    return None


@torch.no_grad()
def valid_loss(run, batches):
    """Mean loss per scored token over the exported validation batches (no label smoothing), summed as attnlab does."""
    total, tokens = 0.0, 0
    for b in batches:
        logits, targets = run.model.batch_logits(tensors_of(b))
        total += F.cross_entropy(logits, targets, ignore_index=run.cfg.pad_id, reduction="sum").item()
        tokens += int((targets != run.cfg.pad_id).sum())
    return total / tokens


def check_valid(run, ref, say):
    torch_loss = valid_loss(run, ref["valid"]["batches"])
    now = ref["valid"]["loss"]
    recorded = recorded_valid_loss(run)
    value, where, rounding = recorded if recorded else (now, "computed by attnlab export: none recorded for these weights", 0.0)
    ok = abs(torch_loss - value) <= TOLERANCE * abs(value) + rounding
    note = ""
    if not ok and rel_err(now, torch_loss) <= TOLERANCE:
        note = f" (attnlab computes {now:.6f} now: the weights or config.json changed since it recorded {where})"
    say(f"valid loss    PyTorch {torch_loss:.6f}, attnlab {value:.6f} ({where}): rel err {rel_err(torch_loss, value):.1e}"
        f"{' + rounding ' + format(rounding, '.0e') if rounding else ''} "
        f"{'<=' if ok else '>'} {TOLERANCE:.0e}{note}  {'ok' if ok else 'MISMATCH'}")
    return ok


def check_gradients(run, ref, grads, say):
    """attnlab's gradients against PyTorch's computed in float64, the same function (the same
    float32 weights and positions) with less rounding than either float32 implementation: a
    float32 reference adds its own rounding, which in a gradient summed over thousands of
    positions (a LayerNorm weight's) reaches 1e-4 of the largest entry at a few hundred thousand
    parameters. ReLU's derivative jumps at 0, so an input that rounding puts on the other side
    of 0 than in attnlab changes the gradients by its unit's whole contribution (a column of
    ff.w1's gradient, and everything before it): at those inputs alone, within 1e-4 of the largest
    |input| of their layer (train/export.cpp), the derivative is taken on attnlab's side."""
    model = copy.deepcopy(run.model).double()
    batch = tensors_of(ref["grad_batch"])
    listed = ref["grad_batch"].get("relu_near_zero", [])
    ffs = use_relu_sides(model, listed, ref["grad_batch"].get("near_zero", TOLERANCE))
    logits, targets = model.batch_logits(batch)
    loss = F.cross_entropy(logits, targets, ignore_index=run.cfg.pad_id, label_smoothing=run.cfg.label_smoothing)
    loss.backward()
    other = sum(m.other_side for m in ffs)
    r = gradient_report(model, loss, grads)
    ok = r["max_rel_err"] <= TOLERANCE
    near = sum(len(x["index"]) for x in listed)
    kinks = f"; {other} of {near} ReLU inputs near 0 on the other side of it than attnlab's, its side taken" if near else ""
    say(f"gradients     {r['params']} parameters on one batch of {ref['grad_batch']['B']} (training loss, label smoothing "
        f"{run.cfg.label_smoothing:g}; PyTorch in float64{kinks}): loss rel err {r['loss_rel_err']:.1e}, max rel err "
        f"{r['grad_rel_err']:.1e} ({r['worst_param']}) {'<=' if ok else '>'} {TOLERANCE:.0e}  {'ok' if ok else 'MISMATCH'}")
    return ok


def encode_source(tok, line, max_len, eos):  # as translate reads a line: cut to max_len - 1, eos appended
    return tok.encode(line)[: max_len - 1] + [eos]


def near_tie_tolerance(z):
    """How close two logits may be and still come out in either order, for logits z of one position.
    The check's standard for agreement is relative 1e-4; for logits, take it relative to the largest
    logit magnitude M of the position: each of attnlab's logits within 1e-4·M of PyTorch's. If
    PyTorch prefers token a and attnlab token b, then z_torch[a] − z_torch[b] ≤
    (z_attnlab[a] + 1e-4·M) − (z_attnlab[b] − 1e-4·M) ≤ 2·1e-4·M, since z_attnlab[b] ≥ z_attnlab[a].
    So a different choice whose PyTorch margin is at most 2·1e-4·M is a near tie, which agreement
    to 1e-4 allows; a larger margin means the logits differ by more than that: a mismatch."""
    return 2 * TOLERANCE * z[torch.isfinite(z)].abs().max().item()


@torch.no_grad()
def check_translations(run, ref, say, show):
    test, cfg = ref["test"], run.cfg
    tok = load_tokenizer(run.dir)
    ours = [encode_source(tok, line, cfg.max_len, cfg.eos_id) for line in test["lines"]]
    tok_diff = [i for i, (a, b) in enumerate(zip(ours, test["src"])) if a != b]
    say(f"tokenization  {len(ours)} test sources: {len(ours) - len(tok_diff)} tokenized as attnlab does"
        f"{'' if not tok_diff else f', {len(tok_diff)} not (first: line {tok_diff[0] + 1})'}  {'ok' if not tok_diff else 'MISMATCH'}")
    hyps = greedy(run.model, test["src"])
    equal, near, different = 0, [], []
    for i, (mine, theirs) in enumerate(zip(hyps, test["greedy"])):
        if mine == theirs:
            equal += 1
            continue
        t = next(k for k in range(max(len(mine), len(theirs)) + 1)
                 if k >= len(mine) or k >= len(theirs) or mine[k] != theirs[k])
        a = mine[t] if t < len(mine) else cfg.eos_id  # a shorter translation chose eos there
        b = theirs[t] if t < len(theirs) else cfg.eos_id
        src = torch.tensor([test["src"][i]])
        z = next_logits(run.model, src, torch.tensor([[cfg.bos_id] + mine[:t]]))[0]
        margin, tol = abs(z[a].item() - z[b].item()), near_tie_tolerance(z)
        (near if margin <= tol else different).append((i, t, margin, tol))
    ok = not different and not tok_diff
    say(f"greedy test   {len(hyps)} translations: {equal} equal to attnlab's, {len(near)} near ties, {len(different)} "
        f"different  {'ok' if not different else 'MISMATCH'}")
    for kind, rows in (("near tie", near), ("different", different)):
        for i, t, margin, tol in rows[:show]:
            say(f"  {kind}: test line {i + 1}, token {t + 1}: PyTorch margin {margin:.2e} "
                f"{'<=' if margin <= tol else '>'} {tol:.2e} (2·1e-4·max|logit|)")
            say(f"    PyTorch: {tok.decode(hyps[i])}")
            say(f"    attnlab: {tok.decode(test['greedy'][i])}")
        if len(rows) > show:
            say(f"  ... and {len(rows) - show} more {kind}s")
    return ok


def find_attnlab(given):
    """--attnlab, else $ATTNLAB (each used as given), else attnlab on PATH, else build/attnlab beside tools/."""
    for flag, path in (("--attnlab", given), ("ATTNLAB", os.environ.get("ATTNLAB"))):
        if path:
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise RunError(f"{flag} {path}: not an executable file (expected the attnlab program)")
            return path
    for path in (shutil.which("attnlab"), os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "attnlab")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise RunError("attnlab: not found (give --attnlab PATH or set ATTNLAB; looked on PATH and for build/attnlab)")


def export(attnlab, run, out, threads, sentences):
    cmd = [attnlab, "export", "--run", run.dir, "--checkpoint", run.which, "--out", out]
    if threads:
        cmd += ["--threads", str(threads)]
    if sentences is not None and run.cfg.arch == "seq2seq":
        cmd += ["--test-sentences", str(sentences)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RunError(f"{' '.join(cmd)}: exit {p.returncode}: {last}")
    ref = read_json(os.path.join(out, "reference.json"), "attnlab export's reference.json")
    grads, _ = read_safetensors(os.path.join(out, "gradients.safetensors"))
    if os.path.realpath(ref["weights"]) != os.path.realpath(run.weights):
        raise RunError(f"{run.dir}: attnlab export loaded {ref['weights']}, this tool {run.weights}")
    return ref, grads


def describe(run):
    c = run.cfg
    sites = {"seq2seq": f"enc self {spec(c.enc_self)}, dec self {spec(c.dec_self)}, cross {spec(c.cross)}",
             "lm": f"causal self-attention {spec(c.dec_self)}", "mlm": f"self-attention {spec(c.enc_self)}"}[c.arch]
    n = sum(p.numel() for p in run.model.parameters())
    step = f", step {run.step}" if run.step is not None else ""
    return (f"{run.dir}: {c.arch} {c.preset} ({sites}), {n:,} parameters in {type(run.model).__name__}, from "
            f"{os.path.relpath(run.weights, run.dir)}{step}")


def spec(v):
    return ("qq" if v.shared_qk else "qk") + "".join(
        "+" + n for n, on in (("noself", v.noself), ("normk", v.normk), ("noV", not v.value_proj), ("noO", not v.out_proj)) if on)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every other error
        self.exit(2, f"attnlab_torch: error: {message} (see attnlab_torch.py --help)\n")


def main(argv=None):
    ap = Parser(
        prog="attnlab_torch.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load an attnlab run into a plain PyTorch module (nn.Module) of its architecture and variant,\n"
                    "and with --check, verify that PyTorch computes what attnlab computed with its weights.",
        epilog="""--check prints, per run:
  valid loss    PyTorch's and attnlab's validation loss (results.json, or metrics.csv at the weights' step), rel err <= 1e-4
  gradients     every parameter's gradient of one validation batch, attnlab export's against PyTorch's in float64
                (ReLU inputs within rounding of 0 taken on attnlab's side), max rel err <= 1e-4
  tokenization  seq2seq: the test sources tokenized by this tool as attnlab tokenized them
  greedy test   seq2seq: greedy translations equal to attnlab's; a different choice whose two tokens' PyTorch
                logits differ by at most 2e-4 x the position's largest |logit| is a near tie (counted and
                printed, not a failure)
exit status: 0 all agree, 1 a check disagrees, 2 nothing could be checked (bad usage or input, attnlab failing).
Weights, names and layout: docs/checkpoints.md.""")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directory (attnlab train --out)")
    ap.add_argument("--checkpoint", choices=["best", "last"], default="best",
                    help="which weights: model.best.safetensors or the newest checkpoint's (default: best)")
    ap.add_argument("--check", action="store_true", help="compare validation loss, gradients and greedy translations with attnlab's")
    ap.add_argument("--attnlab", help="the attnlab program --check runs (default: $ATTNLAB, attnlab on PATH, build/attnlab)")
    ap.add_argument("--sentences", type=int, metavar="N",
                    help="seq2seq: greedy test translations compared (default: as many as the run's final test)")
    ap.add_argument("--threads", type=int, default=0, metavar="N", help="threads for PyTorch and attnlab (default: their own)")
    ap.add_argument("--show", type=int, default=5, metavar="N", help="near ties and differences printed per run (default: 5)")
    args = ap.parse_args(argv)
    if args.sentences is not None and args.sentences < 0:
        ap.error(f"--sentences: expected a whole number >= 0, got {args.sentences}")
    if args.threads < 0:
        ap.error(f"--threads: expected a whole number >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        attnlab = find_attnlab(args.attnlab) if args.check else None
        failed = 0
        for d in args.runs:
            run = load_run(d.rstrip("/") or d, args.checkpoint)
            print(describe(run), flush=True)
            if not args.check:
                continue
            say = lambda line: print("  " + line, flush=True)
            with tempfile.TemporaryDirectory(prefix="attnlab-torch-") as out:
                ref, grads = export(attnlab, run, out, args.threads, args.sentences)
            ok = check_valid(run, ref, say)
            ok &= check_gradients(run, ref, grads, say)
            if run.cfg.arch == "seq2seq":
                ok &= check_translations(run, ref, say, args.show)
            failed += not ok
        if args.check:
            print(f"attnlab_torch: {len(args.runs)} run{'s' if len(args.runs) != 1 else ''} checked: "
                  f"{'all agree with attnlab' if not failed else f'{failed} disagree'}")
        return 1 if failed else 0
    except RunError as e:
        print(f"attnlab_torch: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
