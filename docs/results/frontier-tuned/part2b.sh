#!/bin/sh
# Part 2b of issue 33: d_model 512 at lr 1.5e-3, where qk trains (seed 1 ended at 1.589, against
# 3.305 and 3.255 at 3e-3, where §7's prediction was untestable). qk seed 2 and qq seeds 1 and 2
# at 1.5e-3, the prediction of docs/results.md §7 (its extension, committed before these runs)
# tested at this rate. Same pinned build (b083898) and commands as part2.sh, the rate changed.
# Runs with a results.json are left out; the rest resume. Rerun to resume.
set -eu
P=/work/pinned-tuned/build/attnlab
OUT=/work/runs/frontier-tuned
[ -f $OUT/tokenizer.model ] || { echo "part2b: no $OUT/tokenizer.model; run part1d.sh first" >&2; exit 1; }
mkdir -p $OUT/runs  # each run's log goes beside its directory
[ -f /tmp/tuned-probe/plan.sh ] || $P compare --preset frontier --out /tmp/tuned-probe --plan >/dev/null
line_for() {  # $1 variant, $2 seed, $3 rate
  grep -- " --seed $2 " /tmp/tuned-probe/plan.sh | grep -- "runs/$1-d256-s$2 " \
    | sed -e "s|/tmp/tuned-probe|$OUT|g" -e "s|--lr 1.5e-3|--lr $3|" \
          -e "s|--d-model 256 --d-ff 1024|--d-model 512 --d-ff 2048|" \
          -e "s|runs/$1-d256-s$2|runs/$1-d512-lr$3-s$2|g"
}
{ line_for qq 1 1.5e-3; line_for qk 2 1.5e-3; line_for qq 2 1.5e-3; } > $OUT/part2b.all
[ "$(grep -c -- '--d-model 512 --d-ff 2048' $OUT/part2b.all)" = 3 ] || { echo "part2b: expected 3 d 512 commands in $OUT/part2b.all" >&2; exit 1; }
: > $OUT/part2b.todo
while IFS= read -r line; do
  dir=$(printf '%s\n' "$line" | grep -o -- "--out [^ ]*" | cut -d' ' -f2)
  [ -f "$dir/results.json" ] || [ -f "/work/main/docs/results/frontier-d512/runs/$(basename "$dir")/results.json" ] || printf '%s\n' "$line" >> $OUT/part2b.todo
done < $OUT/part2b.all
wc -l $OUT/part2b.all $OUT/part2b.todo
exec parallel --jobs "${JOBS:-2}" < $OUT/part2b.todo  # JOBS=3 runs all three at once
