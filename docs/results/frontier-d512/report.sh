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
