#!/usr/bin/env bash
# Source rules that a compiler does not check (STYLE.md): banned functions
# and markers of unfinished work in shipped code.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
banned='\b(sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|strtok|strtok_r|alloca)[[:space:]]*\('
if grep -rnE "$banned" src tests/unit tests/fuzz --include='*.c' --include='*.h'; then
	echo "check-source: banned function used (see STYLE.md)" >&2
	status=1
fi
if grep -rnEi '\b(TODO|FIXME|XXX)\b|not (yet )?implemented' src --include='*.c' --include='*.h'; then
	echo "check-source: unfinished-work marker in src/" >&2
	status=1
fi
exit $status
