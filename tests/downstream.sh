#!/bin/sh
# tests/downstream.sh BUILD SOURCE WORK — attnlab as another project uses it: installs BUILD into
# a fresh prefix under WORK, builds examples/train_reverse.cpp (unchanged) against it twice, with
# CMake's find_package(attnlab) (examples/downstream) and with pkg-config, and runs each (it exits
# 1 unless its validation loss fell). Then moves the prefix and runs the installed attnlab there
# on its embedded corpus with ATTNLAB_DATA_DIR unset and the build tree out of reach: the data
# is found beside the installed program, not in the source or build tree.
set -eu
B=$(cd "$1" && pwd); S=$(cd "$2" && pwd); W=$3
rm -rf "$W"; mkdir -p "$W"; W=$(cd "$W" && pwd)
step() { echo "downstream: $*"; }

step "cmake --install --prefix $W/prefix"
cmake --install "$B" --prefix "$W/prefix" > "$W/install.log"
for f in include/attnlab/attnlab.h include/attnlab/version.h include/attnlab/core/tensor.h lib*/cmake/attnlab/attnlabConfig.cmake \
         lib*/cmake/attnlab/attnlabConfigVersion.cmake lib*/pkgconfig/attnlab.pc bin/attnlab share/attnlab/corpora/gettext-en-de/train.en \
         share/man/man1/attnlab.1 share/bash-completion/completions/attnlab; do
  ls "$W/prefix/"$f > /dev/null || { echo "downstream: the install lacks $f" >&2; exit 1; }
done
# the example includes only <attnlab/...> headers: no other project header could be found
if grep -n '#include "' "$S/examples/train_reverse.cpp"; then echo "downstream: train_reverse.cpp includes a header by \"path\"" >&2; exit 1; fi

step "find_package(attnlab)"
cmake -S "$S/examples/downstream" -B "$W/cmake" -DCMAKE_PREFIX_PATH="$W/prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$W/cmake.log"
cmake --build "$W/cmake" -j2 >> "$W/cmake.log"
"$W/cmake/train_reverse" "$W/run-cmake" > "$W/run-cmake.log"

step "pkg-config --static attnlab"
PKG_CONFIG_PATH=$(ls -d "$W"/prefix/lib*/pkgconfig | head -n 1)
export PKG_CONFIG_PATH
[ "$(pkg-config --modversion attnlab)" = "$(sed -n 's/^#define ATTNLAB_VERSION_STRING "\(.*\)"/\1/p' "$W/prefix/include/attnlab/version.h")" ]
# shellcheck disable=SC2046
c++ -std=c++20 -O2 "$S/examples/train_reverse.cpp" $(pkg-config --cflags --libs --static attnlab) -o "$W/train_reverse-pc"
"$W/train_reverse-pc" "$W/run-pc" > "$W/run-pc.log"
# one program, two ways of building it: the same run, bit for bit (one machine, one thread count)
for r in cmake pc; do cut -d, -f1-5,9 "$W/run-$r/metrics.csv" > "$W/losses-$r.csv"; done
cmp "$W/losses-cmake.csv" "$W/losses-pc.csv" || { echo "downstream: the CMake and pkg-config builds trained differently" >&2; exit 1; }

step "the installed attnlab, moved, on its embedded corpus"
mv "$W/prefix" "$W/moved"
out=$(env -u ATTNLAB_DATA_DIR "$W/moved/bin/attnlab" train --out "$W/run-corpus" --d-model 16 --heads 2 --enc-layers 1 \
      --dec-layers 1 --d-ff 32 --vocab 300 --steps 2 --warmup 1 --eval-every 2 --eval-sentences 0 --test-sentences 2 --beam 1 \
      --threads 1 2>&1) || { echo "$out" >&2; exit 1; }
echo "$out" | grep -q "| corpus $W/moved/share/attnlab/corpora/gettext-en-de |" || {
  echo "$out" >&2; echo "downstream: the moved install did not read its own corpus" >&2; exit 1; }
step "passed"
