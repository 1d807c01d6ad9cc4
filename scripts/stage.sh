#!/usr/bin/env bash
# stage.sh NAME CMD...: run one stage of `make check` with a banner, its
# elapsed time, and a clear verdict.
set -u
name=$1
shift
start=$SECONDS
printf '\n==> %s\n' "$name"
"$@"
rc=$?
if [ "$rc" -eq 0 ]; then
	printf '==> %s: done in %ds\n' "$name" "$((SECONDS - start))"
else
	printf '==> %s: FAILED (exit %d) after %ds\n' "$name" "$rc" "$((SECONDS - start))"
fi
exit "$rc"
