#!/usr/bin/env bash
# Install what the project needs on Debian bookworm: idempotent, a fast no-op
# when everything is already there.
#
# Every version comes from versions.env. A pinned Debian package is installed at
# exactly its pinned version while the archive serves it; once the archive has
# dropped it (Debian's security archive moves linux-source-6.12 along), the
# newest available version is installed instead, with a warning. The kernel
# cache key uses the installed version, so that fallback is safe.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
. "$top/versions.env"

log() { printf 'deps: %s\n' "$*" >&2; }

pins=()
for var in $(compgen -v PIN_); do pins+=("${!var}"); done
IFS=, read -r -a unpinned <<<"$UNPINNED_PKGS"

installed_version() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null |
		awk '$1 == "ii" { print $2 }' || true
}

# The versions of a package the archives serve, newest first.
madison_versions() {
	apt-cache madison "$1" 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print $2 }'
}

pin_available() {
	madison_versions "$1" | grep -qxF "$2"
}

# What is missing, or installed at a version other than the pin?
need=()
for pin in "${pins[@]}"; do
	pkg=${pin%%=*} ver=${pin#*=}
	have=$(installed_version "$pkg")
	if [ -z "$have" ]; then
		need+=("$pin")
	elif [ "$have" != "$ver" ]; then
		# Installed at another version: keep it only when the pin is gone from
		# the archive (then it is the fallback of an earlier run).
		if pin_available "$pkg" "$ver"; then
			need+=("$pin")
		fi
	fi
done
for pkg in "${unpinned[@]}"; do
	[ -n "$(installed_version "$pkg")" ] || need+=("$pkg")
done

bindgen_ok() {
	command -v bindgen >/dev/null 2>&1 &&
		[ "$(bindgen --version 2>/dev/null | awk '{print $2}')" = "$BINDGEN_VERSION" ]
}

if [ ${#need[@]} -eq 0 ] && bindgen_ok; then
	exit 0
fi

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "these packages are missing and installing them needs root: ${need[*]}"
		exit 1
	fi
	log "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	install=()
	for item in "${need[@]}"; do
		case "$item" in
		*=*)
			pkg=${item%%=*} ver=${item#*=}
			if pin_available "$pkg" "$ver"; then
				install+=("$pkg=$ver")
			else
				newest=$(madison_versions "$pkg" | head -n 1)
				if [ -z "$newest" ]; then
					log "error: package $pkg is not in the configured archives"
					exit 1
				fi
				log "warning: $pkg $ver is no longer in the archive; falling back to the newest, $newest"
				install+=("$pkg=$newest")
			fi
			;;
		*) install+=("$item") ;;
		esac
	done
	apt-get install -y -qq --no-install-recommends --allow-downgrades "${install[@]}" >/dev/null
fi

if ! bindgen_ok; then
	log "installing bindgen-cli $BINDGEN_VERSION with cargo (a few minutes)"
	# The kernel's bindgen only needs libclang; point it at clang 16's.
	LIBCLANG_PATH=/usr/lib/llvm-16/lib cargo install --quiet --locked --force \
		bindgen-cli --version "$BINDGEN_VERSION"
	bindgen_ok || { log "error: bindgen $BINDGEN_VERSION is not on PATH after install"; exit 1; }
fi
log "all dependencies present"
