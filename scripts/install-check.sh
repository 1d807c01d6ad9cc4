#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make install` into a scratch DESTDIR, and what it must have put there:
# the product modules of the kernel's release in lib/modules/<release>/extra
# (no test module, no harness fixture), bcache-rs in $SBINDIR, the udev
# rule with bcache-rs's path in it (no placeholder left), and a depmod of
# the scratch tree that resolves bcache_rs's dependencies.
#
# usage: install-check.sh KDIR
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
krel=$(cat "$kdir/include/config/kernel.release")
dest=$(mktemp -d /tmp/rkm-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() {
	echo "install-check: $*" >&2
	exit 1
}
make -s -C "$top" --no-print-directory install DESTDIR="$dest" PREFIX=/usr KDIR="$kdir" >/dev/null
extra=$dest/lib/modules/$krel/extra
want="bcache_rs.ko z3fold_rs.ko zbud_rs.ko zspan_rs.ko"
got=$(cd "$extra" && ls | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] || fail "$extra holds '$got', want '$want'"
[ -x "$dest/usr/sbin/bcache-rs" ] || fail "no executable $dest/usr/sbin/bcache-rs"
rule=$dest/etc/udev/rules.d/69-bcache-rs.rules
[ -f "$rule" ] || fail "no udev rule at $rule"
! grep -q '@[A-Z]*@' "$rule" || fail "$rule keeps a placeholder: $(grep '@[A-Z]*@' "$rule")"
grep -q 'RUN+="/usr/sbin/bcache-rs register \$devnode"' "$rule" || fail "$rule does not run /usr/sbin/bcache-rs register"
# depmod of the scratch tree (the kernel's own modules.order and
# modules.builtin beside ours, as a real /lib/modules has them).
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "$kdir/$f" ] && cp "$kdir/$f" "$dest/lib/modules/$krel/"
done
depmod -b "$dest" "$krel" 2>/dev/null || fail "depmod -b $dest $krel failed"
grep -q '^extra/bcache_rs.ko:' "$dest/lib/modules/$krel/modules.dep" ||
	fail "modules.dep has no bcache_rs: $(head -3 "$dest/lib/modules/$krel/modules.dep")"
echo "install-check: $want, bcache-rs and the udev rule installed for $krel; depmod resolves them"
