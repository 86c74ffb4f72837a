#!/bin/sh
# Runs every `$ ` command of docs/tutorial.md from the repository root; fails on the first error.
# Usage: scripts/check-tutorial.sh [attnlab binary dir, default build]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build}
status=0
grep '^\$ ' docs/tutorial.md | sed 's/^\$ //' | while IFS= read -r cmd; do
  cmd=$(echo "$cmd" | sed "s|^build/|$bin/|")
  echo ">>> $cmd"
  if ! sh -c "$cmd" > /tmp/attnlab-tutorial.$$.log 2>&1; then
    tail -20 /tmp/attnlab-tutorial.$$.log
    echo "tutorial command failed: $cmd"
    exit 1
  fi
done
rm -f /tmp/attnlab-tutorial.$$.log
rm -rf runs/tutorial-qq runs/tutorial-compare
echo "tutorial: every command ran"
