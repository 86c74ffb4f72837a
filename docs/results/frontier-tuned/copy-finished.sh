#!/bin/sh
# Copies each finished run of parts 1 and 2's small files (no checkpoints, no tokenizer) into the committed folder.
set -eu
SRC=/work/runs/frontier-tuned/runs
DST=/work/main/docs/results/frontier-tuned/runs
DST512=/work/main/docs/results/frontier-d512/runs
for d in $SRC/*/; do
  n=$(basename $d)
  [ -f $d/results.json ] || continue
  to=$DST; case $n in *-d512-*) to=$DST512;; esac
  [ -f $to/$n/results.json ] && continue
  mkdir -p $to/$n
  for f in config.json dynamics.csv metrics.csv results.json; do cp $d/$f $to/$n/$f; done
  echo "copied $n"
done
# Part 3's runs
for d in /work/runs/frontier-long/runs/*/; do
  [ -d "$d" ] || continue
  n=$(basename $d)
  to=/work/main/docs/results/frontier-long/runs
  [ -f $d/results.json ] || continue
  [ -f $to/$n/results.json ] && continue
  mkdir -p $to/$n
  for f in config.json dynamics.csv metrics.csv results.json; do cp $d/$f $to/$n/$f; done
  echo "copied $n"
done
