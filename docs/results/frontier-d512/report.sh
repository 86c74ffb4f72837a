#!/bin/sh
# The d 512 reports, one per learning rate (a mean curve over two rates is no curve of either):
# each lrRATE/runs/ links the finished runs of that rate in runs/, then compare --report reads
# qq's gap where qk's mean curve reaches the losses of docs/results.md §7's table.
#   sh docs/results/frontier-d512/report.sh          (ATTNLAB=path/to/attnlab to use another build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
A=${ATTNLAB:-$here/../../../build/attnlab}
cd "$here"
for rate in 3e-3 1.5e-3; do
  mkdir -p lr$rate/runs
  for r in runs/*-lr$rate-s*; do
    [ -f "$r/results.json" ] && ln -sfn "../../$r" "lr$rate/runs/$(basename "$r")"
  done
  (cd ../../.. && "$A" compare --report docs/results/frontier-d512/lr$rate --at-loss 2.4,2.0,1.8,1.7,1.613)
done
# The progress plot of docs/results.md §4 (qq minus qk at the same step, one line per width, all at
# the recipe's 1.5e-3) with the d 512 line: the one-rate frontier runs of qk and qq and the d 512
# runs at that rate, as one width grid.
mkdir -p progress-lr1.5e-3/runs
for r in ../frontier/runs/qk-d*-s[12] ../frontier/runs/qq-d*-s[12]; do
  case $(basename "$r") in *-lr*) continue ;; esac  # the rate checks at 7e-4 and 3e-3 are other rates
  ln -sfn "../../$r" "progress-lr1.5e-3/runs/$(basename "$r")"
done
for r in runs/qk-d512-lr1.5e-3-s* runs/qq-d512-lr1.5e-3-s*; do
  [ -f "$r/results.json" ] && ln -sfn "../../$r" "progress-lr1.5e-3/runs/$(basename "$r")"
done
(cd ../../.. && "$A" compare --report docs/results/frontier-d512/progress-lr1.5e-3 --at-loss 2.4,2.0,1.8,1.7,1.613)
