#!/bin/sh
# Part 1 of issue 33 (tuned rates), the whole seed-1 sweep so far, from the pinned build:
# every 3e-3 run, then a 6e-3 run for each (variant, width) whose 3e-3 run beat 1.5e-3
# (docs/results.md §6), listed in SIX below once its 3e-3 run has finished, and 1.2e-2 for each
# whose 6e-3 run was the best (TWELVE). Runs with a
# results.json are left out; the rest resume from their checkpoints. Rerun to resume.
set -eu
P=/work/pinned-tuned/build/attnlab
OUT=/work/runs/frontier-tuned
SIX="qk-d32 qk-d64 qq-d64 qq-noself-d64 noV-d64 noO-d64 qq-noV-noO-d64 qk-d256 qq-d256
     qk-d128 qq-d128 qq-noself-d128 noV-d128 noO-d128 qq-noV-noO-d128 qq-noself-d256 noV-d256 noO-d256 qq-noV-noO-d256"
# 6e-3 best, at the top of the sweep: the next doubling, once (§6)
TWELVE="qk-d32 qk-d64 qq-d64 qq-noself-d64 noV-d64 noO-d64 qq-noV-noO-d64
        qk-d128 qq-d128 qq-noself-d128 noV-d128 noO-d128 qq-noV-noO-d128"
rm -rf /tmp/tuned-probe
$P compare --preset frontier --out /tmp/tuned-probe --plan >/dev/null
mkdir -p $OUT/runs
[ -f $OUT/tokenizer.model ] || cp /tmp/tuned-probe/tokenizer.json /tmp/tuned-probe/tokenizer.model /tmp/tuned-probe/tokenizer.vocab $OUT/
at_rate() {  # $1 = rate as in the name (3e-3), $2 = name filter (extended regexp)
  grep -- ' --seed 1 ' /tmp/tuned-probe/plan.sh | grep -v -- '-lr[0-9]' \
    | sed -e "s|/tmp/tuned-probe|$OUT|g" -e "s|--lr 1.5e-3|--lr $1|" \
          -e "s|\(runs/[A-Za-z0-9+-]*-d[0-9]*\)-s1|\1-lr$1-s1|g" \
    | grep -E "runs/($2)-lr$1-s1 "
}
ALL='[A-Za-z0-9+-]*-d[0-9]*'
# Order: the 3e-3 runs first committed (when unfinished), 1.2e-2, then 6e-3 (short widths first).
{ at_rate 3e-3 'qk-d128|qq-d128'
  at_rate 1.2e-2 "$(echo $TWELVE | tr ' ' '|')"
  at_rate 6e-3 "$(echo $SIX | tr ' ' '|')"
  at_rate 3e-3 "$ALL" | grep -v -E 'runs/(qk|qq)-d(64|256)-lr3e-3-s1 '
} | awk '!seen[$0]++' > $OUT/part1b.all
: > $OUT/part1b.todo
while IFS= read -r line; do
  dir=$(printf '%s\n' "$line" | grep -o -- "--out [^ ]*" | cut -d' ' -f2)
  [ -f "$dir/results.json" ] || printf '%s\n' "$line" >> $OUT/part1b.todo
done < $OUT/part1b.all
wc -l $OUT/part1b.all $OUT/part1b.todo
exec parallel --jobs 2 < $OUT/part1b.todo
