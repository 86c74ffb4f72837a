#!/bin/sh
# bench/compare.sh — attnlab bench and the PyTorch peer back to back, alternating, then the ratios.
#   bench/compare.sh [rounds] [flags...]     e.g. bench/compare.sh 3 --d 512 --heads 8 --layers 6 --ff 2048 --batch 32
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-3}
[ $# -gt 0 ] && shift
flags="$*"
bin=${ATTNLAB:-build/attnlab}
py=${PYTHON:-/usr/bin/python3}
threads=$(echo "$flags" | sed -n 's/.*--threads \([0-9]*\).*/\1/p')
[ -n "$threads" ] || flags="$flags --threads 2"
a_sum=0; p_sum=0; a_rss=0; p_rss=0
i=0
while [ $i -lt "$rounds" ]; do
  a=$($bin bench $flags | head -1)
  p=$($py bench/pytorch_peer.py $flags)
  echo "$a"
  echo "$p"
  a_sum=$(awk -v s="$a_sum" -v x="$(echo "$a" | sed -n 's/.*: \([0-9]*\) target tok\/s.*/\1/p')" 'BEGIN{print s + x}')
  p_sum=$(awk -v s="$p_sum" -v x="$(echo "$p" | sed -n 's/.*: \([0-9]*\) target tok\/s.*/\1/p')" 'BEGIN{print s + x}')
  a_rss=$(echo "$a" | sed -n 's/.*max RSS \([0-9]*\) MiB.*/\1/p')
  p_rss=$(echo "$p" | sed -n 's/.*max RSS \([0-9]*\) MiB.*/\1/p')
  i=$((i + 1))
done
awk -v a="$a_sum" -v p="$p_sum" -v r="$rounds" 'BEGIN{printf "mean tokens/s: attnlab %.0f, pytorch %.0f; ratio attnlab/pytorch %.2f\n", a/r, p/r, a/p}'
echo "max RSS (last round): attnlab $a_rss MiB, pytorch $p_rss MiB"
