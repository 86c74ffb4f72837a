#!/bin/sh
# Part 2 of issue 33: d_model 512, the runs docs/results.md §7 predicts (written before any of
# them ran). The frontier recipe at d 512 (2+2 layers, 4 heads, d_ff 2048, 2,000 steps), from the
# build pinned at b083898: qk, qq, qq-noself and noO at lr 3e-3 (d 256's best for each of qk and
# qq), seeds 1 and 2, then qk at 1.5e-3 seed 1 (§7: whether d 256's rate still serves). Each run's
# command is the frontier plan's d 256 line with the width, d_ff, rate and name changed. Runs with
# a results.json are left out; the rest resume. Rerun to resume.
set -eu
P=/work/pinned-tuned/build/attnlab
OUT=/work/runs/frontier-tuned
mkdir -p $OUT/runs
[ -f $OUT/tokenizer.model ] || { echo "part2: no $OUT/tokenizer.model; run part1d.sh first" >&2; exit 1; }
[ -f /tmp/tuned-probe/plan.sh ] || $P compare --preset frontier --out /tmp/tuned-probe --plan >/dev/null
line_for() {  # $1 variant, $2 seed, $3 rate
  grep -- " --seed $2 " /tmp/tuned-probe/plan.sh | grep -- "runs/$1-d256-s$2 " \
    | sed -e "s|/tmp/tuned-probe|$OUT|g" -e "s|--lr 1.5e-3|--lr $3|" \
          -e "s|--d-model 256 --d-ff 1024|--d-model 512 --d-ff 2048|" \
          -e "s|runs/$1-d256-s$2|runs/$1-d512-lr$3-s$2|g"
}
{
  for s in 1 2; do for v in qk qq qq-noself noO; do line_for $v $s 3e-3; done; done
  line_for qk 1 1.5e-3
} > $OUT/part2.all
[ "$(grep -c -- '--d-model 512 --d-ff 2048' $OUT/part2.all)" = 9 ] || { echo "part2: expected 9 d 512 commands in $OUT/part2.all" >&2; exit 1; }
: > $OUT/part2.todo
while IFS= read -r line; do
  dir=$(printf '%s\n' "$line" | grep -o -- "--out [^ ]*" | cut -d' ' -f2)
  # finished here, or committed (its run directory may have been lost with a machine)
  [ -f "$dir/results.json" ] || [ -f "/work/main/docs/results/frontier-d512/runs/$(basename "$dir")/results.json" ] || printf '%s\n' "$line" >> $OUT/part2.todo
done < $OUT/part2.all
wc -l $OUT/part2.all $OUT/part2.todo
exec parallel --jobs 2 < $OUT/part2.todo
