#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The data checksums' crc32c on the host CPU, natively (bench/crc32c.c).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -msse4.2 -o "$out/crc32c" "$top/bench/crc32c.c"
"$out/crc32c"
