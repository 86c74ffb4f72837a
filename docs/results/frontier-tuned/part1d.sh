#!/bin/sh
# Part 1 of issue 33 (tuned rates), second plan, restarted: part1c.sh read the seed-1 runs from
# $OUT/runs, which were lost with the machine they ran on before their seed-2 runs finished;
# this reads the same seed-1 runs from their committed copies (docs/results/frontier-tuned/runs)
# and queues the same seed-2 runs. Seed 2 of each (variant, width) at its best
# seed-1 rate (lowest validation loss at the budget; a run without a finite valid_loss ranks
# worst), per docs/results.md §6. The seed-1 runs at 1.5e-3 (and the 3e-3 checks of qk/qq at
# d 64 and 256) are the committed ones in docs/results/frontier, from build 7ee9dfd; the rest
# are in $DONE, from the pinned build. A (variant, width) whose seed-1 sweep is unfinished
# is left out and named; runs with a results.json are left out; the rest resume. Rerun to resume.
set -eu
P=/work/pinned-tuned/build/attnlab
OUT=/work/runs/frontier-tuned
OLD=/work/main/docs/results/frontier/runs
DONE=/work/main/docs/results/frontier-tuned/runs
mkdir -p $OUT/runs
[ -f /tmp/tuned-probe/plan.sh ] || $P compare --preset frontier --out /tmp/tuned-probe --plan >/dev/null

loss_of() {  # $1 = run directory; prints its valid loss, or "inf" when unfinished or not finite
  if [ -f "$1/results.json" ]; then
    l=$(grep -o '"valid_loss": *[-0-9.eE+naif]*' "$1/results.json" | sed 's/.*: *//')
    case "$l" in ''|*n*|*N*|*i*|*I*) echo inf ;; *) echo "$l" ;; esac
  else echo missing; fi
}
# The rates tried at seed 1 (the 1.2e-2 only where 6e-3 was the best, once).
RATES="1.5e-3 3e-3 6e-3 1.2e-2"
for w in 32 64 128 256; do
  for v in qk qq qq-noself noV noO qq-noV-noO; do
    [ $w = 32 ] && [ $v != qk ] && continue
    best=""; bestl=""; unfinished=""
    for r in $RATES; do
      case $r in
        1.5e-3) d=$OLD/$v-d$w-s1 ;;
        *) d=$DONE/$v-d$w-lr$r-s1
           [ -f "$d/results.json" ] || [ ! -f "$OLD/$v-d$w-lr$r-s1/results.json" ] || d=$OLD/$v-d$w-lr$r-s1 ;;
      esac
      l=$(loss_of "$d")
      if [ "$l" = missing ]; then
        # a rate that was never started is one the stopping rules skipped; one with a
        # checkpoint but no results.json is still running
        [ -d "$d" ] && unfinished="$unfinished $r"
        continue
      fi
      if [ -z "$best" ] || awk -v a="$l" -v b="$bestl" 'BEGIN { exit !(a != "inf" && (b == "inf" || a + 0 < b + 0)) }'; then
        best=$r; bestl=$l
      fi
    done
    if [ -n "$unfinished" ]; then echo "part1d: $v d$w: seed-1 runs at$unfinished unfinished, left out" >&2; continue; fi
    echo "part1d: $v d$w: best seed-1 rate $best (valid loss $bestl)" >&2
    if [ "$best" = 1.5e-3 ]; then continue; fi  # its seed 2 is committed in docs/results/frontier
    grep -- ' --seed 2 ' /tmp/tuned-probe/plan.sh | grep -- "runs/$v-d$w-s2 " \
      | sed -e "s|/tmp/tuned-probe|$OUT|g" -e "s|--lr 1.5e-3|--lr $best|" -e "s|runs/$v-d$w-s2|runs/$v-d$w-lr$best-s2|g"
  done
done > $OUT/part1d.all
: > $OUT/part1d.todo
while IFS= read -r line; do
  dir=$(printf '%s\n' "$line" | grep -o -- "--out [^ ]*" | cut -d' ' -f2)
  # finished here, or committed (its run directory may have been lost with a machine)
  [ -f "$dir/results.json" ] || [ -f "/work/main/docs/results/frontier-tuned/runs/$(basename "$dir")/results.json" ] || printf '%s\n' "$line" >> $OUT/part1d.todo
done < $OUT/part1d.all
wc -l $OUT/part1d.all $OUT/part1d.todo
exec parallel --jobs 2 < $OUT/part1d.todo
