#!/bin/sh
# Issue 33's grid, in order: part 1's seed-2 runs, part 2 (d 512), part 3 (d 128 trained to the
# end, ../frontier-long/part3.sh), then part 2b (d 512 at 1.5e-3, part2b.sh). Each part skips finished runs and resumes the rest, so this is
# also the resume command:
#   cd /work/runs && setsid nohup sh /work/main/docs/results/frontier-tuned/chain.sh \
#     >> /work/runs/frontier-tuned/chain.log 2>&1 < /dev/null &
set -eu
D=$(dirname "$0")
sh "$D/part1d.sh"
sh "$D/part2.sh"
sh "$D/../frontier-long/part3.sh"
sh "$D/part2b.sh"
