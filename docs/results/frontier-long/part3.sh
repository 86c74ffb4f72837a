#!/bin/sh
# Part 3 of issue 33 (the rule: docs/results.md §8, committed before these runs): qk, qq and
# qq-noself at d_model 128, each at its best rate at that width (6e-3 for all three, §6), seeds 1
# and 2, trained until the validation loss stops improving (compare --until-plateau 5, at most
# 20,000 steps), test decoding with beam 5. From the build pinned at 1bdd060, the first with
# --until-plateau. The grid's tokenizer is part 1's (the same pieces, so each run's first 2,000
# steps are §6's). Runs with a results.json are left out; the rest resume. Rerun to resume.
set -eu
P=/work/pinned-long/build/attnlab
OUT=/work/runs/frontier-long
mkdir -p $OUT
for f in model vocab json; do
  [ -f $OUT/tokenizer.$f ] || cp /work/runs/frontier-tuned/tokenizer.$f $OUT/tokenizer.$f
done
[ -f $OUT/plan.sh ] || $P compare --preset frontier --variants qk,qq,qq-noself --widths 128 --until-plateau 5 \
  --max-steps 20000 --train-args=--lr,6e-3,--beam,5 --plan --out $OUT
# qk at d 32 and qk's extra rates at d 128 (-lr7e-4-, -lr3e-3-) draw the frontier preset's qk
# line; they are not part of this experiment (and --train-args' --lr 6e-3 would override theirs)
grep -v '^#' $OUT/plan.sh | grep -v -- '-d32-' | grep -v -- '-lr[0-9.e-]*-s[0-9]' > $OUT/part3.all
[ "$(wc -l < $OUT/part3.all)" = 6 ] || { echo "part3: expected 6 runs in $OUT/part3.all" >&2; exit 1; }
: > $OUT/part3.todo
while IFS= read -r line; do
  dir=$(printf '%s\n' "$line" | grep -o -- "--out [^ ]*" | cut -d' ' -f2)
  # finished here, or committed (its run directory may have been lost with a machine)
  [ -f "$dir/results.json" ] || [ -f "/work/main/docs/results/frontier-long/runs/$(basename "$dir")/results.json" ] || printf '%s\n' "$line" >> $OUT/part3.todo
done < $OUT/part3.all
wc -l $OUT/part3.all $OUT/part3.todo
exec parallel --jobs 2 < $OUT/part3.todo
