#!/usr/bin/env bash
# Runs every test: unit tests (ASan+UBSan, no /dev/kvm needed) and the
# integration tests (need /dev/kvm; they skip without it). Prints each
# result and a closing "N passed, N failed, N skipped" line.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOG=$(mktemp /tmp/ember-run.XXXXXX)
trap 'rm -f "$LOG"' EXIT
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CMOCKA_MESSAGE_OUTPUT=TAP
filter=${1:-}

run_one() {  # NAME CMD...
	local name=$1; shift
	local out rc
	out=$(mktemp /tmp/ember-one.XXXXXX)
	"$@" >"$out" 2>&1
	rc=$?
	sed -n -e "s#^\(not ok\|ok\)[ 0-9]*\(- \)\?#\1 - $name: #p" "$out" | tee -a "$LOG"
	if ! grep -Eq '^(not )?ok' "$out" || { [ $rc -ne 0 ] && ! grep -q '^not ok' "$out"; }; then
		echo "not ok - $name: exited $rc" | tee -a "$LOG"
		sed 's/^/#   /' "$out" | tail -n 30
	elif grep -q '^not ok' "$out"; then
		grep -v -E '^(not )?ok' "$out" | sed 's/^/#   /' | tail -n 40
	fi
	rm -f "$out"
}

for t in build/unit/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *"$filter"*) ;; *) continue ;; esac
	run_one "unit/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	case "$t" in *"$filter"*) ;; *) continue ;; esac
	run_one "$(basename "$t" .sh)" bash "$t"
done

skipped=$(grep -c '# SKIP' "$LOG")
passed=$(grep -E '^ok' "$LOG" | grep -vc '# SKIP')
failed=$(grep -c '^not ok' "$LOG")
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ $((passed + skipped)) -gt 0 ]
