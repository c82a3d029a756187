#!/usr/bin/env bash
# Runs every libFuzzer target of a -Dfuzz=true build over its seed corpus
# (tests/fuzz/corpus/<name>/), then fuzzes each for a short while into a
# scratch copy. Any crash, leak or sanitizer report fails.
# Usage: scripts/fuzz-corpus.sh BUILD_DIR [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1
secs=${2:-15}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
found=0
for bin in "$build"/tests/fuzz/fuzz-*; do
	[[ -x "$bin" && ! -d "$bin" ]] || continue
	name=$(basename "$bin"); name=${name#fuzz-}
	corpus=tests/fuzz/corpus/$name
	dict=tests/fuzz/$name.dict
	[[ -d "$corpus" ]] || { echo "fuzz: no corpus for $name" >&2; exit 1; }
	found=$((found + 1))
	mapfile -t seeds < <(find "$corpus" -type f | sort)
	# Parsers of mail also take every real message of ../shared/corpus.
	shared=../shared/corpus
	if [[ "$name" == mime && -d "$shared" ]]; then
		mapfile -t -O "${#seeds[@]}" seeds < <(find "$shared" -type f ! -name '*.md' ! -name '*.tsv' | sort)
	fi
	"$bin" -error_exitcode=77 "${seeds[@]}" > "$scratch/$name.log" 2>&1 \
		|| { cat "$scratch/$name.log" >&2; echo "fuzz: $name failed on its corpus" >&2; exit 1; }
	mkdir -p "$scratch/$name"
	# Only the project's own seeds start the short fuzzing run (fast start).
	find "$corpus" -type f -exec cp {} "$scratch/$name/" \;
	dictarg=(); [[ -f "$dict" ]] && dictarg=(-dict="$dict")
	"$bin" -error_exitcode=77 -max_total_time="$secs" -artifact_prefix="$scratch/" \
		"${dictarg[@]}" "$scratch/$name" > "$scratch/$name.fuzz.log" 2>&1 \
		|| { tail -50 "$scratch/$name.fuzz.log" >&2; cp "$scratch"/crash-* tests/fuzz/ 2>/dev/null || true
		     echo "fuzz: $name found a crash (saved under tests/fuzz/)" >&2; exit 1; }
	echo "fuzz: $name: ${#seeds[@]} seeds ok, ${secs}s of fuzzing without findings"
done
[[ $found -gt 0 ]] || { echo "fuzz: no targets in $build" >&2; exit 1; }
