#!/usr/bin/env bash
# A fuzzing campaign (make fuzz-campaign HOURS=N): every target
# build/fuzz/fuzz_NAME for an equal share of N hours (fractions work:
# HOURS=0.25), then the source-based coverage of what it found, measured
# with the build in build/fuzz-cov. Everything lives under
# build/fuzz-campaign/ (scratch, never committed):
#   corpus/NAME/     the target's corpus: the committed seeds
#                    (tests/fuzz/corpus/NAME/) plus what this and earlier
#                    campaigns found
#   artifacts/       crashes, leaks, timeouts (a crash ends a libFuzzer run;
#                    the target starts again for the rest of its share)
#   logs/NAME.log    libFuzzer's output, -print_final_stats included
#   report.txt       one line per target: inputs, inputs/s, crashes,
#                    coverage; what `make fuzz-campaign` prints at the end
# A crash found here goes into tests/fuzz/corpus/NAME/ by hand once fixed.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HOURS=${1:-1}
BIN=$ROOT/build/fuzz
COV=$ROOT/build/fuzz-cov
OUT=$ROOT/build/fuzz-campaign
mkdir -p "$OUT/corpus" "$OUT/artifacts" "$OUT/logs" "$OUT/cov"

tool() {   # llvm-cov-14 where Debian has it, else the unversioned one
	for t in "$1-14" "$1"; do
		command -v "$t" >/dev/null && { echo "$t"; return; }
	done
}
PROFDATA=$(tool llvm-profdata)
LLVMCOV=$(tool llvm-cov)

targets=()
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	if [ ! -x "$BIN/$name" ]; then
		echo "campaign: $BIN/$name not built (make fuzzers)" >&2
		exit 1
	fi
	targets+=("$name")
done
share=$(awk -v h="$HOURS" -v n=${#targets[@]} 'BEGIN { s = int(h * 3600 / n); print s < 1 ? 1 : s }')
echo "campaign: ${#targets[@]} targets, ${share}s each ($HOURS h)"

# One target for its share: libFuzzer again after each crash, on what is
# left of the time.
fuzz() {
	local name=$1 short=${1#fuzz_} left=$share runs=0 crashes=0 log=$OUT/logs/$1.log
	local corpus=$OUT/corpus/$short dict=()
	mkdir -p "$corpus"
	[ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
	: >"$log"
	local t0=$SECONDS
	while [ "$left" -gt 0 ]; do
		local before
		before=$(ls "$OUT/artifacts" | grep -c "^$name-")
		ASAN_OPTIONS=detect_leaks=1 "$BIN/$name" -max_total_time="$left" -print_final_stats=1 \
			"${dict[@]}" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$OUT/artifacts/$name-" \
			"$corpus" "$ROOT/tests/fuzz/corpus/$short" >>"$log" 2>&1
		local rc=$? n
		n=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+$')
		runs=$((runs + ${n:-0}))
		local after
		after=$(ls "$OUT/artifacts" | grep -c "^$name-")
		crashes=$((crashes + after - before))
		left=$((share - (SECONDS - t0)))
		# A failure that left no artifact (the harness aborted before
		# any input ran): not worth the rest of the share.
		[ $rc -ne 0 ] && [ "$after" -eq "$before" ] && { crashes=$((crashes + 1)); break; }
		[ $rc -eq 0 ] && break
	done
	local secs=$((SECONDS - t0))
	[ $secs -lt 1 ] && secs=1
	echo "$name $runs $((runs / secs)) $crashes" >"$OUT/logs/$name.stats"
}

for name in "${targets[@]}"; do
	fuzz "$name"
	read -r _ runs rate crashes <"$OUT/logs/$name.stats"
	echo "campaign: $name: $runs inputs, $rate/s, $crashes crashes"
done

# Coverage: each target's coverage build runs its corpus once.
objects=()
for name in "${targets[@]}"; do
	short=${name#fuzz_}
	[ -x "$COV/$name" ] && [ -n "$PROFDATA" ] && [ -n "$LLVMCOV" ] || continue
	rm -f "$OUT/cov/$name".*.profraw
	LLVM_PROFILE_FILE="$OUT/cov/$name.%p.profraw" ASAN_OPTIONS=detect_leaks=0 \
		"$COV/$name" -runs=0 "$OUT/corpus/$short" "$ROOT/tests/fuzz/corpus/$short" \
		>"$OUT/logs/$name.cov.log" 2>&1
	"$PROFDATA" merge -sparse "$OUT/cov/$name".*.profraw -o "$OUT/cov/$name.profdata" || continue
	objects+=(-object "$COV/$name")
	# Lines of src/ it runs, and the share of the files it reaches.
	"$LLVMCOV" report "$COV/$name" -instr-profile="$OUT/cov/$name.profdata" \
		-ignore-filename-regex='(tests|/usr)/' >"$OUT/cov/$name.txt" 2>/dev/null
done

{
	printf '%-22s %12s %9s %8s  %s\n' target inputs inputs/s crashes "coverage of src/ (lines run, % of the lines of the files it reaches)"
	for name in "${targets[@]}"; do
		read -r _ runs rate crashes <"$OUT/logs/$name.stats"
		cov="n/a (no build/fuzz-cov or llvm-cov)"
		if [ -f "$OUT/cov/$name.txt" ]; then
			# llvm-cov's per-file rows: Lines and Missed Lines are
			# columns 8 and 9; files the target never reaches are left out.
			cov=$(awk '$1 ~ /\.[ch]$/ && $8 > $9 { lines += $8; run += $8 - $9; files++ }
				END { if (files) printf "%d lines, %.1f%% of %d files", run, 100 * run / lines, files; else print "none" }' \
				"$OUT/cov/$name.txt")
		fi
		printf '%-22s %12s %9s %8s  %s\n' "$name" "$runs" "$rate" "$crashes" "$cov"
	done
	if [ ${#objects[@]} -gt 0 ]; then
		"$PROFDATA" merge -sparse "$OUT"/cov/fuzz_*.profdata -o "$OUT/cov/all.profdata" 2>/dev/null &&
		"$LLVMCOV" report "${objects[@]:1}" -instr-profile="$OUT/cov/all.profdata" \
			-ignore-filename-regex='(tests|/usr)/' >"$OUT/cov/all.txt" 2>/dev/null &&
		awk '/^TOTAL/ { printf "all targets: %s of %s lines of src/ (%s), %s of %s regions (%s)\n", $8 - $9, $8, $10, $2 - $3, $2, $4 }' \
			"$OUT/cov/all.txt"
	fi
} | tee "$OUT/report.txt"
found=$(cat "$OUT"/logs/fuzz_*.stats | awk '{ n += $4 } END { print n + 0 }')
if [ "$found" -gt 0 ]; then
	echo "campaign: $found crashes; the inputs are in $OUT/artifacts"
	exit 1
fi
