#!/usr/bin/env bash
# What the seccomp filters cost, in one run on this machine: the port-I/O
# exit round trip (every exit passes the vCPU thread's filter on its way
# back into KVM_RUN) and start-up to the first KVM_RUN (building and
# loading the filters), each with --seccomp=off and kill. Medians.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=${EMBER:-$ROOT/build/ember}
MB=$ROOT/build/guest/mb
OUT=$ROOT/build/bench
N=${N:-15}
mkdir -p "$OUT"
gcc -c -o "$OUT/tiny64.o" "$ROOT/bench/tiny.S"
ld -T "$ROOT/bench/tiny.ld" -o "$OUT/tiny64.elf" "$OUT/tiny64.o"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for mode in off kill; do
	pio=$(for _ in $(seq "$N"); do
		{ "$EMBER" run --kernel "$MB/pio_roundtrip.flat" --test-devices --memory 64M --seccomp=$mode \
			</dev/null 2>/dev/null || true; } | sed -n 's/^pio_roundtrip_ns=//p'
	done | median)
	first=$(for _ in $(seq "$N"); do
		{ "$EMBER" run --kernel "$OUT/tiny64.elf" --debug-exit --memory 128M --cpus 2 --log-level info \
			--seccomp=$mode 2>&1 >/dev/null || true; } | sed -n 's/.*first KVM_RUN \([0-9.]*\) ms.*/\1/p'
	done | median)
	printf 'seccomp=%-4s  port-I/O round trip %6s ns   main() to first KVM_RUN (2 vCPUs) %6s ms\n' \
		"$mode" "$pio" "$first"
done
