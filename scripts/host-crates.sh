#!/usr/bin/env bash
# Print the packages of the host cargo workspace, one a line (none: nothing).
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" && cargo metadata --no-deps --format-version 1 2>/dev/null |
	python3 -c 'import json,sys; [print(p["name"]) for p in json.load(sys.stdin)["packages"]]' 2>/dev/null
exit 0
