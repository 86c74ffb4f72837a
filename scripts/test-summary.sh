#!/bin/sh
# The closing line of `make test`: how many ctest entries passed, failed and were skipped, and
# why each skipped one could not run (its "SKIPPED: ..." line, tests/skip.h).
#   scripts/test-summary.sh BUILD_DIR     # after ctest ... | tee BUILD_DIR/ctest.log
# Each entry's result is ctest's own line ("  3/20 Test  #3: test_apps_gdb ....***Skipped  0.01 sec");
# the reason is in the output ctest keeps of the run (Testing/Temporary/LastTest.log).
set -eu
out="$1/ctest.log"
log="$1/Testing/Temporary/LastTest.log"
[ -f "$out" ] || { echo "test-summary: no ctest output at $out (did ctest run?)" >&2; exit 1; }
[ -f "$log" ] || log=/dev/null
awk -v kept="$log" '
  BEGIN {  # the reason each entry gave, from the kept output
    while ((getline line < kept) > 0) {
      if (line ~ /^[0-9]+\/[0-9]+ Test: /) { split(line, w, " "); name = w[3] }
      else if (line ~ /^SKIPPED: /) reason[name] = substr(line, 10)
    }
  }
  / Test +#[0-9]+: / {
    for (i = 1; i <= NF; i++) if ($i ~ /^#[0-9]+:$/) name = $(i + 1)
    if ($0 ~ /\*\*\*Skipped/ || $0 ~ / Not Run/) { skipped++; why[skipped] = name ": " (name in reason ? reason[name] : "(no reason given)") }
    else if ($0 ~ / Passed +[0-9.]+ sec/) passed++
    else failed++
  }
  END {
    printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped
    for (i = 1; i <= skipped; i++) printf "  skipped %s\n", why[i]
  }' "$out"
