#!/usr/bin/env bash
# Runs every libFuzzer target build/fuzz/fuzz_NAME from its seed corpus
# tests/fuzz/corpus/NAME/ (read only: new inputs go to build/fuzz/corpus/NAME/,
# crashes to build/fuzz/artifacts/), with tests/fuzz/fuzz_NAME.dict if any.
#   run.sh --time SECONDS        each target for that long (make fuzz)
#   run.sh --runs N [--tap]      each target for N inputs, fixed seed; --tap
#                                prints one ok/not ok line per target
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mode=(-max_total_time=60)
tap=0
while [ $# -gt 0 ]; do
	case $1 in
	--time) mode=(-max_total_time="$2"); shift 2 ;;
	--runs) mode=(-runs="$2" -seed=1); shift 2 ;;
	--tap) tap=1; shift ;;
	*) echo "usage: $0 [--time S | --runs N] [--tap]" >&2; exit 2 ;;
	esac
done
status=0
mkdir -p "$ROOT/build/fuzz/artifacts"
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	name=$(basename "$src" .c)
	short=${name#fuzz_}
	bin=$ROOT/build/fuzz/$name
	seeds=$ROOT/tests/fuzz/corpus/$short
	work=$ROOT/build/fuzz/corpus/$short
	mkdir -p "$work" "$seeds"
	log=$ROOT/build/fuzz/$name.log
	if [ ! -x "$bin" ]; then
		[ $tap -eq 1 ] && echo "not ok - $name: $bin not built (make fuzzers)"
		status=1
		continue
	fi
	dict=()
	[ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
	ASAN_OPTIONS=detect_leaks=1 "$bin" "${mode[@]}" "${dict[@]}" -timeout=20 -rss_limit_mb=2048 \
		-artifact_prefix="$ROOT/build/fuzz/artifacts/$name-" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -n 1)
	if [ $rc -eq 0 ] && [ -n "$runs" ]; then
		if [ $tap -eq 1 ]; then echo "ok - $name: $runs inputs"; else echo "$name: $runs inputs, no failure"; fi
	else
		status=1
		if [ $tap -eq 1 ]; then echo "not ok - $name: libFuzzer exited $rc (log $log)"; else echo "$name: FAILED (exit $rc), log $log"; fi
		grep -E 'ERROR|check failed|SUMMARY|artifact' "$log" | head -n 10 | sed 's/^/#   /'
	fi
done
exit $status
