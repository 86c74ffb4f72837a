#!/bin/sh
# Part 1 of issue 33 (tuned rates), seed-1 runs at 3e-3 not already committed, from the pinned
# build; resumable: rerun this script (each run resumes itself from its checkpoint).
set -eu
P=/work/pinned-tuned/build/attnlab
OUT=/work/runs/frontier-tuned
rm -rf /tmp/tuned-probe
$P compare --preset frontier --out /tmp/tuned-probe --plan >/dev/null
grep -- ' --seed 1 ' /tmp/tuned-probe/plan.sh | grep -v -- '-lr[0-9]' \
  | sed -e "s|/tmp/tuned-probe|$OUT|g" -e 's|--lr 1.5e-3|--lr 3e-3|' -e 's|\(runs/[A-Za-z0-9+-]*-d[0-9]*\)-s1|\1-lr3e-3-s1|g' \
  | grep -v -E 'runs/(qk|qq)-d(64|256)-lr3e-3-s1 ' > $OUT/part1-lr3e-3.sh
mkdir -p $OUT/runs
[ -f $OUT/tokenizer.model ] || cp /tmp/tuned-probe/tokenizer.json /tmp/tuned-probe/tokenizer.model /tmp/tuned-probe/tokenizer.vocab $OUT/
wc -l $OUT/part1-lr3e-3.sh
exec parallel --jobs 2 < $OUT/part1-lr3e-3.sh
