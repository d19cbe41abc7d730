#!/usr/bin/env bash
# Start-up and footprint of Ember against QEMU, in one run on this machine:
#  - ember: process start -> first KVM_RUN (Ember's own --log-level info line)
#  - wall time of a whole VM that prints "ok" and exits, Ember vs QEMU 7.2
#    (-M microvm and -M pc, multiboot build of the same guest)
#  - Ember's RSS excluding guest RAM, while a guest runs
# Prints medians; absolute numbers depend on the machine, ratios less so.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=${EMBER:-$ROOT/build/ember}
OUT=$ROOT/build/bench
N=${N:-20}
mkdir -p "$OUT"
gcc -c -o "$OUT/tiny64.o" "$ROOT/bench/tiny.S"
ld -T "$ROOT/bench/tiny.ld" -o "$OUT/tiny64.elf" "$OUT/tiny64.o"
gcc -m32 -DMULTIBOOT -c -o "$OUT/tiny32.o" "$ROOT/bench/tiny.S"
ld -m elf_i386 -T "$ROOT/bench/tiny.ld" -o "$OUT/tiny32.elf" "$OUT/tiny32.o"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms_since() { echo "$(( ($(date +%s%N) - $1) / 1000 ))" | awk '{printf "%.2f\n", $1/1000}'; }

wall() {  # CMD...: wall ms of one run
	local t0
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1 || true
	ms_since "$t0"
}

first_run=$(for _ in $(seq "$N"); do
	{ "$EMBER" run --kernel "$OUT/tiny64.elf" --debug-exit --memory 128M --log-level info 2>&1 >/dev/null || true; } |
		sed -n 's/.*first KVM_RUN \([0-9.]*\) ms.*/\1/p'
done | median)
ember_wall=$(for _ in $(seq "$N"); do wall "$EMBER" run --kernel "$OUT/tiny64.elf" --debug-exit --memory 128M; done | median)

QEMU=$(command -v qemu-system-x86_64 || true)
if [ -n "$QEMU" ]; then
	qargs=(-accel kvm -nodefaults -display none -no-user-config -serial stdio -m 128M
	       -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$OUT/tiny32.elf")
	qemu_microvm=$(for _ in $(seq "$N"); do wall "$QEMU" -M microvm "${qargs[@]}"; done | median)
	qemu_pc=$(for _ in $(seq 5); do wall "$QEMU" -M pc "${qargs[@]}"; done | median)
else
	qemu_microvm=n/a qemu_pc=n/a
fi

# RSS while a guest runs: the CPL3 user test kernel runs for a few hundred ms.
rss_sample() {
	"$EMBER" run --kernel "$ROOT/build/guest/user.elf" --memory 256M --debug-exit >/dev/null 2>&1 &
	local pid=$!
	sleep 0.15
	awk '/^[0-9a-f]+-[0-9a-f]+ /{guest = ($0 ~ /ember-ram/)} /^Rss:/{ if (guest) g += $2; else v += $2 }
	     END {print v, g}' "/proc/$pid/smaps" 2>/dev/null || echo "0 0"
	wait "$pid" || true
}
read -r vmm_kb guest_kb < <(for _ in 1 2 3 4 5; do rss_sample; done | sort -n | sed -n 3p)

echo "ember start -> first KVM_RUN (median of $N): ${first_run} ms"
echo "whole VM, print + exit (median): ember ${ember_wall} ms, qemu -M microvm ${qemu_microvm} ms, qemu -M pc ${qemu_pc} ms"
if [ "$qemu_microvm" != n/a ]; then
	awk -v e="$ember_wall" -v q="$qemu_microvm" -v p="$qemu_pc" \
		'BEGIN {printf "ratio ember/qemu-microvm %.2f, ember/qemu-pc %.3f\n", e/q, e/p}'
fi
echo "ember RSS excluding guest RAM: $((vmm_kb)) KiB (guest RAM touched: ${guest_kb} KiB)"
