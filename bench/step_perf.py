#!/usr/bin/env python3
"""bench/step_perf.py — where a training step's time goes, sampled by perf, by kind of work.

  python3 bench/step_perf.py build/attnlab --d 64 --threads 1 [--seconds 6] [--variant qk]

Runs `attnlab bench` (the bench model at width d, d_ff 4d), attaches `perf record` (linux-perf)
after 3 s, while the timed steps run, and stops the bench when the sampling ends, before its
replays. The samples are sorted by where they fell: OpenBLAS's kernels and drivers, its packing
of the operands (the *copy routines), its zeroing of an output for beta = 0 (memset), memmove
(mostly the bias rows the linear layers write before their products), attnlab's kernels (the
functions core/kernels.h declares, less those that call BLAS), the rest of attnlab (tape,
tensors, masks, the product calls), libc, libgomp (a thread waiting for the other, spinning
between or at the end of parallel regions) and the OS.

perf samples CPU time: a thread asleep is not sampled. On two threads the shares are of the
time the two threads ran, and OpenMP's waits, which end in sleep after a short spin, are a
floor. The first line gives each thread's sample count against the about 2,000 a second of a
thread that never slept; the last lines, the largest of attnlab's kernels and of the rest of
attnlab (--top of each), as shares of all samples. The kernels' names are read from this
checkout's core/kernels.h, whichever binary is profiled.

The bench's own profile counts the products as replays; this counts them as the step runs
them, so the two cross-check (docs/benchmarks.md, "Where the step's time goes, sampled").
"""
import argparse
import collections
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PRODUCT_CALLS = ("matmul", "gram", "linear_forward", "cache_scores", "cache_context")


def kernel_names():
    """The functions core/kernels.h declares, less the ones that hand products to BLAS."""
    names = set()
    with open(os.path.join(HERE, "..", "core", "kernels.h")) as f:
        for line in f:
            m = re.match(r"(?:inline |static |ATTN\w* )*[\w:<>]+[\s*&]+(\w+)\(", line)
            if m and not m[1].startswith(PRODUCT_CALLS):
                names.add(m[1])
    return names


def kind(dso, mark, sym, binary, kernels):
    base = sym.split("(")[0].split(" [clone")[0].removeprefix("attn::")
    if mark == "k":
        return "OS"
    if "openblas" in dso:
        return "OpenBLAS packing (copy)" if "copy" in sym else "OpenBLAS kernels and drivers"
    if sym.startswith("__memset"):
        return "memset (OpenBLAS's zeroing, beta = 0)"
    if sym.startswith("__memmove"):
        return "memmove (mostly the bias rows)"
    if "gomp" in dso:
        return "libgomp (a thread waiting)"
    if re.match(r"(libc|libm|libstdc\+\+)\.so", dso):
        return "libc, libstdc++, libm"
    if dso == binary and sym.startswith("attn::") and base in kernels:
        return "attnlab kernels"
    if dso == binary:
        return "attnlab, the rest (tape, tensors, masks, product calls)"
    return "other"


def positive(cast):
    def parse(text):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if not math.isfinite(v) or v <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
        return v
    return parse


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: end quietly
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("attnlab", help="the attnlab binary")
    ap.add_argument("--d", type=positive(int), default=64)
    ap.add_argument("--threads", type=positive(int), default=1)
    ap.add_argument("--variant", default="qk")
    ap.add_argument("--seconds", type=positive(float), default=6, help="how long to sample (default 6)")
    ap.add_argument("--top", type=positive(int), default=8, help="symbols listed of each (default 8)")
    a = ap.parse_args()
    if not (os.path.isfile(a.attnlab) and os.access(a.attnlab, os.X_OK)):
        sys.exit(f"step_perf.py: {a.attnlab}: not an executable")
    if shutil.which("perf") is None:
        sys.exit("step_perf.py: perf not found (Debian: apt-get install linux-perf)")
    # More steps than any machine runs while sampling: the bench is stopped once the sampling ends,
    # before its replays.
    steps = 1_000_000
    cmd = [a.attnlab, "bench", "--d", str(a.d), "--ff", str(4 * a.d), "--variant", a.variant, "--threads",
           str(a.threads), "--steps", str(steps), "--pairs", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)  # past start-up and the warm-up steps
        if bench.poll() is not None:
            sys.exit("step_perf.py: the bench ended first: " + (bench.stdout.read().strip()[-300:] or "(no output)"))
        rec = subprocess.run(["perf", "record", "-F", "2000", "-o", data, "-p", str(bench.pid), "--", "sleep",
                              str(a.seconds)], capture_output=True, text=True)
        ended_early = bench.poll() is not None
        bench.terminate()
        out = bench.communicate()[0]
        if ended_early:
            sys.exit("step_perf.py: the bench ended while sampling: " + (out.strip()[-300:] or "(no output)"))
        if rec.returncode != 0:
            err = [l for l in rec.stderr.splitlines() if l.strip()]
            first = next((l for l in err if "rror" in l), err[0] if err else f"exit status {rec.returncode}")
            sys.exit("step_perf.py: perf record failed: " + first.strip())
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "-g", "none",
                              "--percent-limit", "0"], capture_output=True, text=True)
        if rep.returncode != 0:
            sys.exit("step_perf.py: perf report failed: " + (rep.stderr.strip().splitlines() or ["?"])[0])
        tids = subprocess.run(["perf", "script", "-i", data, "-F", "tid"], capture_output=True, text=True).stdout
    per_thread = sorted(collections.Counter(tids.split()).values(), reverse=True)
    shares, funcs, rest = collections.Counter(), collections.Counter(), collections.Counter()
    binary, kernels = os.path.basename(a.attnlab), kernel_names()
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, mark, sym = float(m[1]), m[2], m[3], m[4].strip()
        k = kind(dso, mark, sym, binary, kernels)
        shares[k] += pct
        name = sym.split("(")[0].split(" [clone")[0].removeprefix("attn::")
        if k == "attnlab kernels":
            funcs[name] += pct
        elif k.startswith("attnlab, the rest"):
            rest["calls into libraries (PLT stubs)" if name.endswith("@plt") else name] += pct
    if not shares:
        sys.exit("step_perf.py: perf recorded no samples of the bench")
    # perf samples CPU time: a thread asleep (OpenMP's passive wait after its short spin) is not
    # sampled, so on two threads the shares are of the time the threads ran, and waiting is a floor.
    print(f"{a.attnlab}: {a.variant} d {a.d}, {a.threads} thread(s), {a.seconds:g} s of steps sampled at 2 kHz: "
          f"{' and '.join(map(str, per_thread))} samples a thread, of about {int(2000 * a.seconds)} for one that never slept")
    for k, pct in shares.most_common():
        print(f"  {pct:6.2f}%  {k}")
    products = sum(p for k, p in shares.items() if k.startswith(("OpenBLAS", "memset", "memmove")))
    print(f"  {products:6.2f}%  the products as the step runs them: OpenBLAS, memset and memmove "
          f"(the shares add to {sum(shares.values()):.1f}%: perf rounds each symbol's)")
    print(f"  attnlab's kernels, of all samples: " + ", ".join(f"{f} {p:.2f}%" for f, p in funcs.most_common(a.top)))
    print(f"  the rest of attnlab, of all samples: " + ", ".join(f"{f} {p:.2f}%" for f, p in rest.most_common(a.top)))


if __name__ == "__main__":
    main()
