#!/usr/bin/env bash
# The test kernel: Debian's linux-source-6.12, configured from tinyconfig +
# kernel/configs/kvm_guest.config + .config.fragment + kernel/FLAVOUR.fragment,
# built with scripts/kmake into a cache outside the clone.
#
#   kernel.sh build FLAVOUR   build (a no-op when the cache has it), print KDIR
#   kernel.sh kdir FLAVOUR    print the KDIR the build would use
#   kernel.sh key FLAVOUR     print the cache key and what went into it
#
# The cache is ${RKM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/rust-kmods}:
#   src/linux-VERSION/        the unpacked source, shared by both flavours
#   kernel/FLAVOUR-KEY/       an O= build tree; .built marks a finished one
# KEY hashes the installed source package version, the toolchain's versions,
# the config inputs and KERNEL_CACHE_EPOCH, so a change of any of them builds
# a new tree and a second run with none is a no-op.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
. "$top/versions.env"

cmd=${1:-}
flavour=${2:-}
case "$cmd" in build | kdir | key) ;; *)
	echo "usage: $0 build|kdir|key debug|perf" >&2
	exit 2
	;;
esac
case "$flavour" in debug | perf) ;; *)
	echo "kernel.sh: unknown flavour '$flavour' (debug or perf)" >&2
	exit 2
	;;
esac

cache=${RKM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-kmods}
src_pkg=${PIN_LINUX_SOURCE%%=*}
tarball=/usr/src/$src_pkg.tar.xz
frags=("$top/.config.fragment" "$top/kernel/$flavour.fragment")

src_version=$(dpkg-query -W -f='${Version}' "$src_pkg" 2>/dev/null || true)
if [ -z "$src_version" ] || [ ! -r "$tarball" ]; then
	echo "kernel.sh: $src_pkg is not installed (run scripts/deps.sh)" >&2
	exit 1
fi

key_inputs() {
	echo "epoch $KERNEL_CACHE_EPOCH"
	echo "source $src_pkg $src_version"
	echo "rustc $(/usr/bin/rustc --version)"
	echo "clang $(clang"$LLVM_SUFFIX" --version | head -n 1)"
	echo "bindgen $(bindgen --version 2>/dev/null || echo none)"
	echo "flavour $flavour"
	for f in "${frags[@]}"; do
		echo "fragment ${f#"$top"/} $(sha256sum <"$f" | cut -c1-16)"
	done
}
key=$(key_inputs | sha256sum | cut -c1-16)
src=$cache/src/linux-$(echo "$src_version" | tr ':~+' '___')
kdir=$cache/kernel/$flavour-$key

case "$cmd" in
kdir)
	echo "$kdir"
	exit 0
	;;
key)
	echo "$key"
	key_inputs
	exit 0
	;;
esac

if [ -e "$kdir/.built" ]; then
	echo "$kdir"
	exit 0
fi

start=$SECONDS
say() { printf 'kernel[%s]: %s (%ds)\n' "$flavour" "$*" "$((SECONDS - start))" >&2; }

# Run a long command with its output in $log, a progress line every 30 s,
# and the log's tail on failure.
log=$kdir/build.log
run_logged() {
	local what=$1
	shift
	"$@" >>"$log" 2>&1 &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "$what... ($(grep -c -E '^\s+(CC|RUSTC|LD|AR)' "$log" || true) steps done)"
		fi
	done
	if ! wait "$pid"; then
		say "$what FAILED; the last lines of $log:"
		tail -n 40 "$log" >&2
		exit 1
	fi
}

if [ ! -e "$src/.unpacked" ]; then
	say "unpacking $src_pkg $src_version into $src"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -C "$src.tmp" --strip-components=1 -xf "$tarball"
	touch "$src.tmp/.unpacked"
	mv "$src.tmp" "$src"
fi

# A new key for a flavour that has a tree already (a fragment or toolchain
# change): take that tree over, so that Kbuild rebuilds only what the change
# touches. It would be removed as superseded at the end anyway.
if [ ! -d "$kdir" ]; then
	prev=$(ls -1dt "$cache/kernel/$flavour"-* 2>/dev/null | head -n 1 || true)
	if [ -n "$prev" ] && [ "$(readlink "$prev/source" 2>/dev/null)" = "$src" ]; then
		say "starting from the superseded tree ${prev##*/} (an incremental build)"
		rm -f "$prev/.built"
		mv "$prev" "$kdir"
	fi
fi
mkdir -p "$kdir"
: >"$log"
say "configuring $kdir"
kmake=("$top/scripts/kmake" -C "$src" O="$kdir")
run_logged "tinyconfig" "${kmake[@]}" tinyconfig
run_logged "merging fragments" env KCONFIG_CONFIG="$kdir/.config" \
	"$src/scripts/kconfig/merge_config.sh" -m -O "$kdir" "$kdir/.config" \
	"$src/kernel/configs/kvm_guest.config" "${frags[@]}"
run_logged "olddefconfig" "${kmake[@]}" olddefconfig

# Every option a fragment asks for must have survived olddefconfig: the
# last line that names it, since a later fragment (the flavour's) may
# override an earlier one (the common one), as merge_config.sh does.
last_lines() {
	awk '{
		o = $0
		if (o ~ /^CONFIG_[A-Za-z0-9_]+=/) sub(/=.*/, "", o)
		else if (o ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) o = $2
		else next
		if (!(o in last)) order[++n] = o
		last[o] = $0
	} END { for (i = 1; i <= n; i++) print last[order[i]] }' "$@"
}
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		opt=${line%%=*}
		if ! grep -qxF "$line" "$kdir/.config"; then
			got=$(grep -E "^(# )?$opt[= ]" "$kdir/.config" || echo "$opt absent")
			echo "kernel.sh: $opt: the fragment asks for '$line', the .config has '$got'" >&2
			missing=1
		fi
		;;
	"# CONFIG_"*" is not set")
		opt=${line#"# "}
		opt=${opt%" is not set"}
		if grep -qE "^$opt=" "$kdir/.config"; then
			echo "kernel.sh: $opt: the fragment asks for it unset, the .config has '$(grep -E "^$opt=" "$kdir/.config")'" >&2
			missing=1
		fi
		;;
	esac
done < <(last_lines "${frags[@]}")
if [ "$missing" -ne 0 ]; then
	echo "kernel.sh: Kconfig dropped options of the fragments (see above): fix their dependencies" >&2
	exit 1
fi

say "building bzImage and modules with $(nproc) jobs (the log: $log)"
run_logged "building" "${kmake[@]}" -j"$(nproc)" all
say "installing the kernel's own modules into $kdir/modroot"
rm -rf "$kdir/modroot"
run_logged "modules_install" "${kmake[@]}" INSTALL_MOD_PATH="$kdir/modroot" modules_install

key_inputs >"$kdir/.built"
# Older trees of this flavour are superseded.
for old in "$cache/kernel/$flavour"-*; do
	[ "$old" = "$kdir" ] || rm -rf "$old"
done
say "done"
echo "$kdir"
