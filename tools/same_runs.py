#!/usr/bin/env python3
"""Are two grid directories (e.g. `make demo`'s reports/quick from two commits) the same runs?

    tools/same_runs.py BEFORE AFTER

Every file under BEFORE must exist under AFTER and the other way round. Files are compared byte
for byte, except what is allowed to differ between two builds or two clones of one machine:
  - timings: tokens_per_s, train_seconds, wall_seconds, decode_sentences_per_s (metrics.csv,
    results.json, state.json, summary.csv) and the progress lines of train.log;
  - the build string ("attnlab": "0.1.0 (commit ...)"), each stretch's build and machine
    ("segments") and where the corpus was read from;
  - what a report draws from those (curves.csv's time columns, the by-time plot, report.md's
    time and tokens/s columns, plots.gp's comment).
Prints each file that differs in anything else and exits 1; exits 0 when none does.
"""
import csv
import io
import json
import os
import re
import sys

TIMING = {"tokens_per_s", "train_seconds", "wall_seconds", "decode_sentences_per_s", "seconds", "minutes"}
BUILD = {"attnlab", "segments"}  # segments: where each stretch of a run ran (results.json, state.json), not what it computed


def files(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def strip_json(x):
    if isinstance(x, dict):
        return {k: strip_json(v) for k, v in x.items() if k not in TIMING and k not in BUILD}
    if isinstance(x, list):
        return [strip_json(v) for v in x]
    return x


def strip_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return rows
    keep = [i for i, h in enumerate(rows[0]) if h not in TIMING and h not in BUILD and "time" not in h]
    return [[r[i] for i in keep if i < len(r)] for r in rows]


def strip_log(text):
    # the progress lines carry tokens/s and an ETA; the first line names the corpus's path
    out = []
    for line in text.splitlines():
        line = re.sub(r" \d+ tok/s ETA \S+", "", line)
        line = re.sub(r"corpus \S+", "corpus <path>", line)
        line = re.sub(r"(\d+h)?(\d+m)?\d+(\.\d+)? ?(s|min|sentences/s)\b", "<time>", line)  # 1h02m03s, 5m41s, 12.5 s
        out.append(line)
    return out


def same(path, a, b):
    if a == b:
        return True
    name = os.path.basename(path)
    if name.endswith(".json"):
        return strip_json(json.loads(a)) == strip_json(json.loads(b))
    if name.endswith(".csv"):
        if name.startswith("valid_loss_by_time"):
            return True  # drawn against wall time
        return strip_csv(a.decode()) == strip_csv(b.decode())
    if name.endswith(".log"):
        return strip_log(a.decode()) == strip_log(b.decode())
    if name == "report.md" or name == "summary.txt":
        # the time and tokens/s columns of the run table
        norm = lambda t: re.sub(r"\| \d+ \| \d+ \| (?=\d+\.\d{4} \|)", "| <time> | <tok/s> | ", t.decode())
        return norm(a) == norm(b)
    if name == "plots.gp":
        return [l for l in a.decode().splitlines() if not l.startswith("#")] == \
               [l for l in b.decode().splitlines() if not l.startswith("#")]
    if name.endswith(".png") and "by_time" in name:
        return True
    return False


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tools/same_runs.py BEFORE AFTER")
    before, after = sys.argv[1], sys.argv[2]
    for d in (before, after):
        if not os.path.isdir(d):
            sys.exit(f"same_runs.py: {d}: not a directory")
    fa, fb = files(before), files(after)
    bad = 0
    for f in sorted(fa ^ fb):
        print(f"only in {'BEFORE' if f in fa else 'AFTER'}: {f}")
        bad += 1
    for f in sorted(fa & fb):
        with open(os.path.join(before, f), "rb") as x, open(os.path.join(after, f), "rb") as y:
            if not same(f, x.read(), y.read()):
                print(f"differs: {f}")
                bad += 1
    print(f"{len(fa & fb)} files compared, {bad} differ beyond timings, build and paths")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
