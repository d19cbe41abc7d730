#!/usr/bin/env bash
# kvm-unit-tests-style benchmark: Ember's own multiboot test kernels
# (build/guest/mb/*.flat) under `ember test -j2` against QEMU running the same
# kernels two at a time, in the same run; per-kernel start-to-exit time of a
# trivial kernel (hello.flat) under Ember, QEMU -M microvm and QEMU -M pc;
# and the port-I/O exit round trip (pio_roundtrip.flat) under both.
# Usage: bash bench/kut.sh [ROUNDS]   (needs /dev/kvm and qemu-system-x86_64)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=$ROOT/build/ember
MB=$ROOT/build/guest/mb
ROUNDS=${1:-5}
QEMU=${QEMU_BIN:-qemu-system-x86_64}
QARGS=(-accel kvm -nodefaults -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4
       -display none -serial stdio -m 64 -smp 2)
[ -x "$EMBER" ] && ls "$MB"/*.flat >/dev/null 2>&1 || { echo "build first: make all"; exit 2; }
command -v "$QEMU" >/dev/null || { echo "no $QEMU"; exit 2; }
ms() { echo "scale=1; ($2 - $1) / 1000000" | bc; }
now() { date +%s%N; }

# Median of ROUNDS start-to-exit times of one command (ms); the command must exit 1.
median_run() {
	local t=() s e rc
	for _ in $(seq "$ROUNDS"); do
		s=$(now); "$@" </dev/null >/dev/null 2>&1; rc=$?; e=$(now)
		[ $rc = 1 ] || { echo "FAILED(rc=$rc)"; return; }
		t+=("$(ms "$s" "$e")")
	done
	printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p"
}

echo "# per-kernel start-to-exit, hello.flat, median of $ROUNDS (ms)"
e1=$(median_run "$EMBER" run --kernel "$MB/hello.flat" --test-devices --memory 64M --cpus 2)
q1=$(median_run "$QEMU" "${QARGS[@]}" -M microvm -kernel "$MB/hello.flat")
q2=$(median_run "$QEMU" "${QARGS[@]}" -M pc -kernel "$MB/hello.flat")
echo "ember run:          $e1"
echo "qemu -M microvm:    $q1"
echo "qemu -M pc:         $q2"

echo "# whole suite ($(ls "$MB"/*.flat | wc -l) kernels), two at a time (s)"
s=$(now); "$EMBER" test -j2 --timeout 120 "$MB"/*.flat >/tmp/ember-kut-bench.$$ 2>&1; rc=$?; e=$(now)
es=$(echo "scale=3; ($e - $s) / 1000000000" | bc)
grep -E "passed, .* failed" /tmp/ember-kut-bench.$$; rm -f /tmp/ember-kut-bench.$$
echo "ember test -j2:     $es (exit $rc)"
for m in microvm pc; do
	s=$(now)
	ls "$MB"/*.flat | xargs -P2 -I{} sh -c 'exec timeout 120 "$@" -kernel "$0" </dev/null >/dev/null 2>&1' {} "$QEMU" "${QARGS[@]}" -M $m
	e=$(now)
	qs=$(echo "scale=3; ($e - $s) / 1000000000" | bc)
	echo "qemu -M $m -P2:  $qs   ratio ember/qemu: $(echo "scale=3; $es / $qs" | bc)"
done

echo "# port-I/O exit round trip (OUT+IN of port 0xe0, ns)"
pe=$("$EMBER" run --kernel "$MB/pio_roundtrip.flat" --test-devices --memory 64M </dev/null 2>/dev/null | sed -n 's/^pio_roundtrip_ns=//p')
pq=$(timeout 120 "$QEMU" "${QARGS[@]}" -M pc -kernel "$MB/pio_roundtrip.flat" </dev/null 2>/dev/null | sed -n 's/^pio_roundtrip_ns=//p')
echo "ember: ${pe:-?}   qemu -M pc: ${pq:-?}"
