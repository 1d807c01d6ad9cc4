#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: boot the test kernel with the project's modules and show, step by
# step, what they plug into. usage: demo.sh KDIR FLAVOUR MODULE.ko...
# RKM_DEMO_ZPOOL (make demo ZPOOL=z3fold_rs): the Rust zpool driver(s) to
# show under zswap; both by default.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1 flavour=$2
shift 2
cat <<EOT
demo: booting the $flavour test kernel under QEMU (TCG, 2 vCPUs) with a fresh
demo: HDD image (virtio-blk), SSD image (NVMe) and swap disk; the kernel was
demo: built once into $(dirname "$kdir") and is reused.
demo: Lines marked '|' come from inside the guest.
EOT
exec "$top/scripts/vm-run.py" --kdir "$kdir" --flavour "$flavour" --timeout 1800 \
	--script "$top/scripts/demo-guest.sh" --log-dir "$top/build/logs/demo" \
	--guest-tools "$top/target/release/rkm-memstress" "$top/target/release/bcache-rs" \
	/usr/sbin/mkfs.ext4 /usr/sbin/e2fsck \
	${RKM_DEMO_ZPOOL:+--env "RKM_DEMO_ZPOOL=$RKM_DEMO_ZPOOL"} --modules "$@"
