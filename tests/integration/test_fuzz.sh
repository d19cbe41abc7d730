#!/usr/bin/env bash
# Every libFuzzer target (tests/fuzz/fuzz_*.c) for a bounded number of
# inputs, from its committed seed corpus. A new target just drops in.
# test-host: none
source "$(dirname "$0")/lib.sh"

RUNS=${FUZZ_RUNS:-20000}
if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
	for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
		skip "$(basename "$f" .c)" "no clang (tools/install-deps.sh installs it)"
	done
	exit 0
fi
# Build them if `make check` has not (e.g. after `make all unit`).
if ! make -s -C "$ROOT" fuzzers >"$TMP/build.log" 2>&1; then
	fail "building the fuzz targets" "make fuzzers failed"
	tail -n 20 "$TMP/build.log" | sed 's/^/#   /'
	exit 0
fi
bash "$ROOT/tests/fuzz/run.sh" --runs "$RUNS" --tap
exit 0
