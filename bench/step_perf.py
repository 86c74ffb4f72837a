#!/usr/bin/env python3
"""bench/step_perf.py — where a training step's time goes, sampled by perf, by kind of work.

  python3 bench/step_perf.py build/attnlab --d 64 --threads 1 [--seconds 6] [--variant qk]

Runs `attnlab bench` (the bench model at width d, d_ff 4d) with enough steps to outlast the
sampling, attaches `perf record` (linux-perf) after 3 s, while the timed steps run and before
the bench's replays, and sorts the samples by where they fell: OpenBLAS's micro-kernels, its
packing of the operands (the *copy routines), its zeroing of an output for beta = 0 (memset),
the linear layers' bias rows written before their products (memmove), attnlab's elementwise,
loss and optimizer kernels, the rest of attnlab (tape, tensors, masks), libc (malloc, free),
libgomp (a thread waiting for the other: spinning between or at the end of parallel regions)
and the OS. On two threads the shares are of both threads' time.

The bench's own profile counts the products as replays; this counts them as the step runs
them, so the two cross-check (docs/benchmarks.md, "Where the step's time goes, sampled").
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

KERNELS = ("cross_entropy", "layernorm", "dropout", "softmax", "adam", "bias_backward", "relu", "embedding",
           "sum_squares", "axpy", "scale_", "add_forward", "add_rows")


def kind(dso, mark, sym):
    if "openblas" in dso:
        return "OpenBLAS packing (copy)" if "copy" in sym else "OpenBLAS micro-kernels"
    if sym.startswith("__memset"):
        return "memset (OpenBLAS, beta = 0)"
    if sym.startswith("__memmove"):
        return "memmove (bias rows)"
    if "gomp" in dso:
        return "libgomp (a thread waiting)"
    if mark == "k":
        return "OS"
    if dso.startswith(("libc", "libstdc++", "libm")):
        return "libc, libstdc++, libm"
    if dso.startswith("attnlab") and sym.startswith("attn::") and any(k in sym for k in KERNELS):
        return "attnlab kernels"
    if dso.startswith("attnlab"):
        return "attnlab, the rest (tape, tensors, masks)"
    return "other"


def positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return v
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("attnlab", help="the attnlab binary")
    ap.add_argument("--d", type=positive(int), default=64)
    ap.add_argument("--threads", type=positive(int), default=1)
    ap.add_argument("--variant", default="qk")
    ap.add_argument("--seconds", type=positive(float), default=6, help="how long to sample (default 6)")
    a = ap.parse_args()
    if shutil.which("perf") is None:
        sys.exit("step_perf.py: perf not found (Debian: apt-get install linux-perf)")
    if not (os.path.isfile(a.attnlab) and os.access(a.attnlab, os.X_OK)):
        sys.exit(f"step_perf.py: {a.attnlab}: not an executable")
    # Enough steps to outlast the sampling, from a rough step time (0.11 s at d 64 on one thread);
    # the bench is stopped once the sampling ends, before its replays.
    step_s = 0.11 * (a.d / 64) ** 1.4 * (0.55 if a.threads > 1 else 1)
    steps = int((a.seconds + 8) / step_s) + 10
    cmd = [a.attnlab, "bench", "--d", str(a.d), "--ff", str(4 * a.d), "--variant", a.variant, "--threads",
           str(a.threads), "--steps", str(steps), "--pairs", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)  # past start-up and the warm-up steps
        if bench.poll() is not None:
            sys.exit("step_perf.py: the bench ended first:\n" + bench.stdout.read())
        rec = subprocess.run(["perf", "record", "-F", "2000", "-o", data, "-p", str(bench.pid), "--", "sleep",
                              str(a.seconds)], capture_output=True, text=True)
        ended_early = bench.poll() is not None
        bench.terminate()
        out = bench.communicate()[0]
        if ended_early:
            sys.exit("step_perf.py: the bench's steps ended while sampling (a slower machine?): " + out.strip()[-200:])
        if rec.returncode != 0:
            sys.exit("step_perf.py: perf record failed: " + rec.stderr.strip().splitlines()[-1])
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "-g", "none",
                              "--percent-limit", "0"], capture_output=True, text=True).stdout
    shares, funcs = collections.Counter(), collections.Counter()
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, mark, sym = float(m[1]), m[2], m[3], m[4].strip()
        k = kind(dso, mark, sym)
        shares[k] += pct
        if k == "attnlab kernels":
            funcs[sym.split("(")[0].removeprefix("attn::")] += pct
    print(f"{a.variant} d {a.d}, {a.threads} thread(s), {a.seconds:g} s of steps sampled at 2 kHz:")
    for k, pct in shares.most_common():
        print(f"  {pct:6.2f}%  {k}")
    print("  attnlab's kernels: " + ", ".join(f"{f} {p:.2f}%" for f, p in funcs.most_common(8)))


if __name__ == "__main__":
    main()
