#!/usr/bin/env bash
# stage.sh NAME CMD...: run one stage of `make check` with a banner, its
# elapsed time, and a clear verdict. With RKM_STAGES set, appends
# "NAME SECONDS STATUS" to that file (scripts/summary.py prints it).
set -u
name=$1
shift
start=$SECONDS
printf '\n==> %s\n' "$name"
"$@"
rc=$?
elapsed=$((SECONDS - start))
[ -z "${RKM_STAGES:-}" ] || echo "$name $elapsed $rc" >>"$RKM_STAGES"
if [ "$rc" -eq 0 ]; then
	printf '==> %s: done in %ds\n' "$name" "$elapsed"
else
	printf '==> %s: FAILED (exit %d) after %ds\n' "$name" "$rc" "$elapsed"
fi
exit "$rc"
