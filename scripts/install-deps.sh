#!/bin/sh
# Install the Debian 12 packages attnlab needs to build, test and run its demo.
# Idempotent: when every package is already installed it makes no apt call at all.
# Usage: scripts/install-deps.sh [--with-torch | --with-gdb]
#   --with-torch  also install what the tests use: python3-torch (only the optional PyTorch
#                 reference tests, a benchmark and tools/attnlab_torch.py use it, the tool with
#                 python3-sentencepiece; the product never does), gdb, and GNU
#                 parallel (a test runs a compare plan through it), script (bsdutils: a terminal
#                 for translate), mount (a small tmpfs: a real full disk), man-db (the man
#                 page is rendered), and chromium, chromium-driver and python3-selenium (the
#                 browser tests of attnlab serve's pages).
#   --with-gdb    also gdb alone (make debug).
set -eu

pkgs="g++ make cmake pkg-config libopenblas-dev catch2 libfmt-dev libcli11-dev \
nlohmann-json3-dev libtomlplusplus-dev libsentencepiece-dev sentencepiece gnuplot-nox libcpp-httplib-dev"
if [ "${1:-}" = "--with-torch" ]; then
    pkgs="$pkgs python3 python3-torch python3-numpy python3-sentencepiece gdb parallel bsdutils mount man-db \
chromium chromium-driver python3-selenium"
elif [ "${1:-}" = "--with-gdb" ]; then
    pkgs="$pkgs gdb python3"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
