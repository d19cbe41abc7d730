#!/usr/bin/env bash
# Runs every test: the unit tests (ASan+UBSan, no /dev/kvm needed) and the
# integration tests, and closes with "N passed, N failed, N skipped".
#
#   bash tests/run.sh [FILTER]     only tests whose path contains FILTER
#
# Where the integration tests run (docs/testing.md):
#   EMBER_TEST_HOST=direct   here, on this machine's /dev/kvm
#   EMBER_TEST_HOST=nested   inside the nested SVM test host
#                            (tools/testhost/), two at once
#   unset (auto)             direct where there is a /dev/kvm (VMX, SVM,
#                            and for now kvm_pvm), nested where there is
#                            none
# A script's header "# test-host: WORD..." says more: "none" needs no KVM
# and always runs here; "also-pvm" also runs here, with
# EMBER_TEST_PVM_ONLY=1, on a kvm_pvm machine (its PVM-specific checks);
# "nested-ready" passes in the test host, so auto mode on a kvm_pvm machine
# runs it there rather than directly.
# Every line names where its check ran: [host] (no KVM), [direct-vmx],
# [direct-svm], [direct-pvm] or [nested-svm].
#
# `--inside SCRIPT...` is how the test host runs its share (tools/testhost/
# suite.py): integration scripts only, each bracketed by begin/end marks.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOG=$(mktemp /tmp/ember-run.XXXXXX)
trap 'rm -f "$LOG"' EXIT
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CMOCKA_MESSAGE_OUTPUT=TAP

source tools/kvm-kind.sh

# run_one WHERE NAME CMD...: run a test binary or script, tag its TAP lines.
run_one() {
	local where=$1 name=$2; shift 2
	local out rc
	out=$(mktemp /tmp/ember-one.XXXXXX)
	"$@" >"$out" 2>&1
	rc=$?
	sed -n -e "s#^\(not ok\|ok\)[ 0-9]*\(- \)\?#\1 - [$where] $name: #p" "$out" | tee -a "$LOG"
	if ! grep -Eq '^(not )?ok' "$out" || { [ $rc -ne 0 ] && ! grep -q '^not ok' "$out"; }; then
		echo "not ok - [$where] $name: exited $rc" | tee -a "$LOG"
		sed 's/^/#   /' "$out" | tail -n 30
	elif grep -q '^not ok' "$out"; then
		grep -v -E '^(not )?ok' "$out" | sed 's/^/#   /' | tail -n 40
	fi
	rm -f "$out"
}

script_class() { sed -n 's/^# test-host: *//p' "$1" | head -n 1; }

if [ "${1:-}" = --inside ]; then
	shift
	where=${EMBER_TEST_WHERE:-direct-$(kvm_kind)}
	# A script's lines come out when it ends: till then a heartbeat tells
	# the outside (tools/testhost/run --silence) that the host still runs.
	(while sleep 30; do echo "# testhost-alive"; done) &
	heartbeat=$!
	trap 'kill $heartbeat 2>/dev/null; rm -f "$LOG"' EXIT
	for t in "$@"; do
		echo "# testhost-begin $t"
		start=$(date +%s)
		run_one "$where" "$(basename "$t" .sh)" bash "$t"
		echo "# testhost-end $t $(($(date +%s) - start))"
	done
	exit 0
fi

filter=${1:-}
kind=$(kvm_kind)
mode=${EMBER_TEST_HOST:-auto}
# kvm_pvm machines run directly for now: in the test host the snapshot and
# migration checks still fail on SVM's CPUID (issue #14) and a few others
# (docs/testing.md, "Status"); EMBER_TEST_HOST=nested runs them there.
# Scripts marked nested-ready already pass in the test host: on kvm_pvm
# they run there.
pvm_nested=0
case $mode in
auto) case $kind in vmx | svm) mode=direct ;; pvm) mode=direct pvm_nested=1 ;; *) mode=nested ;; esac ;;
direct | nested) ;;
*) echo "tests/run.sh: EMBER_TEST_HOST=$mode: use direct or nested" >&2; exit 2 ;;
esac
echo "# integration tests: $mode (this machine's /dev/kvm: $kind)"

for t in build/unit/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *"$filter"*) ;; *) continue ;; esac
	run_one host "unit/$(basename "$t")" "$t"
done

nested=()
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	case "$t" in *"$filter"*) ;; *) continue ;; esac
	class=" $(script_class "$t") "
	name=$(basename "$t" .sh)
	if [ "$class" = " none " ]; then
		run_one host "$name" bash "$t"
	elif [ "$mode" = direct ] && { [ "$pvm_nested" = 0 ] || [[ $class != *" nested-ready "* ]]; }; then
		run_one "direct-$kind" "$name" bash "$t"
	else
		nested+=("$t")
		if [[ $class == *" also-pvm "* ]] && [ "$kind" = pvm ]; then
			EMBER_TEST_PVM_ONLY=1 run_one direct-pvm "$name" bash "$t"
		fi
	fi
done

if [ ${#nested[@]} -gt 0 ]; then
	# The test host boots the Debian kernel the Linux-guest tests use, and
	# packs build/linux: make it here, where the package archive is reached.
	if ! bash tools/linux/build.sh >/tmp/ember-linux-build.$$ 2>&1; then
		echo "not ok - [host] test host: tools/linux/build.sh failed" | tee -a "$LOG"
		sed 's/^/#   /' /tmp/ember-linux-build.$$ | tail -n 20
	else
		EMBER_TEST_WHERE=nested-svm python3 tools/testhost/suite.py "${nested[@]}" | tee -a "$LOG"
		suite_rc=${PIPESTATUS[0]}
		[ "$suite_rc" -eq 0 ] || echo "not ok - [host] test host: tools/testhost/suite.py exited $suite_rc" | tee -a "$LOG"
		# A script the suite never reported on must not vanish from the count.
		for t in "${nested[@]}"; do
			name=$(basename "$t" .sh)
			grep -q "^\(not \)\?ok - \[nested-svm\] $name: " "$LOG" ||
				echo "not ok - [nested-svm] $name: no result came back from the test host" | tee -a "$LOG"
		done
	fi
	rm -f /tmp/ember-linux-build.$$
fi

skipped=$(grep -c '^ok.*# SKIP' "$LOG")
passed=$(grep -E '^ok' "$LOG" | grep -vc '# SKIP')
failed=$(grep -c '^not ok' "$LOG")
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ $((passed + skipped)) -gt 0 ]
