#!/bin/sh
# bench/step_efficiency.sh BEFORE AFTER [ROUNDS] — the step's efficiency (its products replayed
# alone / the step) of two attnlab binaries side by side: qk and qq at d 64, 128 and 256, one
# and two threads, the bench's default depth, vocab and 64 × 24 batch; before and after alternate
# within each round. Prints CSV: round,threads,variant,d,binary,ms_per_step,products_alone_ms,
# efficiency,max_rss_mib,products_spread_ms,ceiling,operand_mb,bandwidth_gbs,memory_ms,kernels_ms,
# at_most — the last seven from a binary whose bench also replays the products spread over the
# step's tensors (ceiling = alone / spread: the efficiency of a step that did nothing but its
# products, operands placed as the step places them), counts their memory traffic (each operand
# read once, each result read and written once; memory_ms: those bytes at the measured in-place
# bandwidth, what streaming them once from memory would take, not a bound) and replays the step's
# other kernels alone (kernels_ms; at_most = alone / (the products as the step runs them, in cache,
# + kernels): the efficiency of a step made of these kernels, unfused, with no glue), empty from an
# older one; then paired_efficiency, paired_lo, paired_hi and paired_at_most: the same two ratios
# taken within rounds of one step and its replays in turn (bench --pairs, 5 rounds; medians, and
# the efficiency's least and most), which a drift of the machine's speed between the step and
# the replays does not move; empty from a binary without --pairs. paired_kept: in the same rounds,
# alone / (the products spread + kernels), the efficiency of a step of these kernels, unfused,
# that pays its products' placement as the spread replay does (a reference, not a ceiling: the
# step can beat it); empty from an older binary. Time nothing else meanwhile
# (pause a grid: pkill -STOP -f "attnlab train").
# Result: docs/benchmarks.md ("The optimizer's passes and the step's efficiency", "The bytes the
# products move", "The step's other kernels alone", "An Intel VM", "The attention one head at a
# time, and the step beside its products' placement", "A cold operand read in order first").
set -eu
[ $# -ge 2 ] || { echo "usage: bench/step_efficiency.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]" >&2; exit 2; }
for b in "$1" "$2"; do [ -x "$b" ] || { echo "step_efficiency.sh: $b: not an executable" >&2; exit 2; }; done
rounds=${3:-2}
echo "round,threads,variant,d,binary,ms_per_step,products_alone_ms,efficiency,max_rss_mib,products_spread_ms,ceiling,operand_mb,bandwidth_gbs,memory_ms,kernels_ms,at_most,paired_efficiency,paired_lo,paired_hi,paired_at_most,paired_kept"
r=1
while [ $r -le "$rounds" ]; do
  for th in 1 2; do for v in qk qq; do for d in 64 128 256; do for b in "$1" "$2"; do
    steps=10; [ $d = 256 ] && steps=5
    out=$("$b" bench --d $d --ff $((4 * d)) --variant $v --steps $steps --threads $th 2>&1)
    ms=$(printf '%s\n' "$out" | grep -oE '[0-9.]+ ms/step' | head -1 | cut -d' ' -f1)
    alone=$(printf '%s\n' "$out" | grep -oE 'products replayed alone \(same shapes[a-z ]*, nothing between them\): [0-9.]+ ms' | grep -oE '[0-9.]+ ms' | grep -oE '[0-9.]+')
    rss=$(printf '%s\n' "$out" | grep -oE 'max RSS [0-9]+' | cut -d' ' -f3)
    eff=$(awk -v a="$alone" -v m="$ms" 'BEGIN { printf "%.3f", a / m }')
    spread=$(printf '%s\n' "$out" | grep -oE 'come from memory\): [0-9.]+ ms' | grep -oE '[0-9.]+' | head -1 || true)
    ceiling=""
    [ -n "$spread" ] && ceiling=$(awk -v a="$alone" -v s="$spread" 'BEGIN { printf "%.3f", a / s }')
    bytes=$(printf '%s\n' "$out" | grep -oE 'written\): [0-9.]+ MB per step; at the measured [0-9.]+ GB/s \(in-place passes over 64 MiB\) [0-9.]+ ms' || true)
    mb=$(printf '%s' "$bytes" | awk '{ print $2 }'); gbs=$(printf '%s' "$bytes" | awk '{ print $9 }'); mem=$(printf '%s' "$bytes" | awk '{ print $16 }')
    kern=$(printf '%s\n' "$out" | grep -oE 'and Adam; same shapes, nothing between them[^)]*\): [0-9.]+ ms; with' | grep -oE '[0-9.]+ ms; with' | grep -oE '[0-9.]+' | head -1 || true)
    most=$(printf '%s\n' "$out" | grep -oE 'is at most [0-9.]+ products alone' | grep -oE '[0-9.]+' || true)
    paired=$(printf '%s\n' "$out" | grep -oE '; efficiency [0-9.]+ \([0-9.]+-[0-9.]+\), a step of these kernels, unfused, at most [0-9.]+' || true)
    # "; efficiency E (LO-HI), a step of these kernels, unfused, at most M": fields 2, 3, 4 and 13
    fields=$(printf '%s' "$paired" | tr '();,-' '     ')
    p_eff=$(printf '%s' "$fields" | awk '{ print $2 }'); p_lo=$(printf '%s' "$fields" | awk '{ print $3 }')
    p_hi=$(printf '%s' "$fields" | awk '{ print $4 }'); p_most=$(printf '%s' "$fields" | awk '{ print $13 }')
    p_kept=$(printf '%s\n' "$out" | grep -oE 'where the step keeps them (at most )?[0-9.]+' | grep -oE '[0-9.]+$' || true)
    echo "$r,$th,$v,$d,$b,$ms,$alone,$eff,$rss,$spread,$ceiling,$mb,$gbs,$mem,$kern,$most,$p_eff,$p_lo,$p_hi,$p_most,$p_kept"
  done; done; done; done
  r=$((r + 1))
done
