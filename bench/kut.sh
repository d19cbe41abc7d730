#!/usr/bin/env bash
# kvm-unit-tests-style benchmark, Ember against QEMU 7.2 in the same run, on
# Ember's own test kernels as multiboot .flat files (KERNELS, default
# build/guest/*.flat: the guest kit's suite) and a trivial one (bench/tiny.S:
# prints "ok", exits):
#  1. per kernel, start to result and start to exit (median of ROUNDS):
#     ember run (--result-fd: the result comes before the VM's teardown),
#     QEMU -M microvm and -M pc (PC_ROUNDS runs: SeaBIOS is emulated here);
#     for the trivial kernel also bare_kvm (bench/bare_kvm.c: the same VM
#     shape with nothing but KVM), so Ember's own overhead = ember - bare;
#  2. the whole suite two at a time: `ember test -j2` against QEMU running
#     the same kernels with the same options two at a time (xargs -P2);
#  3. the port-I/O exit round trip (pio_roundtrip.flat) under each, and
#     with perf, the VMM's own user-space cycles per exit and per run.
# QEMU gets what `ember test` gives a kernel: 64 MiB, 2 vCPUs, the host CPU
# (minus arch-capabilities, which QEMU cannot set on kvm_pvm), debug-exit,
# pc-testdev, and on microvm the PIT, PIC and RTC Ember always has (microvm
# leaves the RTC out by default).
# Usage: bash bench/kut.sh [ROUNDS]   (needs /dev/kvm and qemu-system-x86_64)
#   ROUNDS (default 11): runs per kernel and VMM; PC_ROUNDS (default 1, 0 skips
#   -M pc), SUITE_ROUNDS (default 3), KERNELS, EMBER, QEMU_BIN, QEMU_CPU.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=${EMBER:-$ROOT/build/ember}
OUT=$ROOT/build/bench
ROUNDS=${1:-11}
PC_ROUNDS=${PC_ROUNDS:-1}
SUITE_ROUNDS=${SUITE_ROUNDS:-3}
QEMU=${QEMU_BIN:-qemu-system-x86_64}
read -r -a KERNELS <<<"${KERNELS:-$(ls "$ROOT"/build/guest/*.flat 2>/dev/null | tr '\n' ' ')}"
QARGS=(-accel kvm -cpu "${QEMU_CPU:-host,-arch-capabilities}" -nodefaults -no-user-config
       -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4
       -display none -serial stdio -m 64 -smp 2)
MICROVM=microvm,pit=on,pic=on,rtc=on
[ -x "$EMBER" ] && [ ${#KERNELS[@]} -gt 0 ] || { echo "build first: make all guest"; exit 2; }
command -v "$QEMU" >/dev/null || { echo "no $QEMU"; exit 2; }
mkdir -p "$OUT"
gcc -O2 -Wall -o "$OUT/bare_kvm" "$ROOT/bench/bare_kvm.c" &&
	gcc -O2 -Wall -o "$OUT/timeit" "$ROOT/bench/timeit.c" &&
	gcc -m32 -DMULTIBOOT -c -o "$OUT/tiny32.o" "$ROOT/bench/tiny.S" &&
	ld -m elf_i386 -T "$ROOT/bench/tiny.ld" -o "$OUT/tiny32.elf" "$OUT/tiny32.o" || exit 2
TINY=$OUT/tiny32.elf
T=$OUT/timeit

ember_run() { "$T" "$1" "$EMBER" run --kernel "$2" --test-devices --memory 64M --cpus 2 --result-fd 3; }
qemu_run() { "$T" "$1" "$QEMU" "${QARGS[@]}" -M "$2" -kernel "$3"; }
f() { echo "$1" | awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}'; }
st() { local s; s=$(f "$1" status); [ "$s" = 1 ] && echo "" || echo " ($2: exit $s)"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "-"}'; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "# host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(test -e /sys/module/kvm_pvm && echo kvm_pvm || echo kvm)"
echo "# 1. per kernel (ms, median of $ROUNDS; QEMU -M pc: $PC_ROUNDS)"
printf '%-22s %9s %9s %9s %9s %11s %11s\n' kernel bare:exit ember:res ember:exit microvm pc ember/microvm
for k in "$TINY" "${KERNELS[@]}"; do
	name=$(basename "$k")
	bare=- p=
	[ "$k" = "$TINY" ] && bare=$(f "$("$T" "$ROUNDS" "$OUT/bare_kvm" "$k" 2 64)" exit_ms)
	e=$(ember_run "$ROUNDS" "$k")
	m=$(qemu_run "$ROUNDS" "$MICROVM" "$k")
	[ "$PC_ROUNDS" -gt 0 ] && p=$(qemu_run "$PC_ROUNDS" pc "$k")
	printf '%-22s %9s %9s %9s %9s %11s %11s%s%s%s\n' "$name" "$bare" "$(f "$e" result_ms)" "$(f "$e" exit_ms)" \
		"$(f "$m" exit_ms)" "$(f "$p" exit_ms)" "$(ratio "$(f "$e" exit_ms)" "$(f "$m" exit_ms)")" \
		"$(st "$e" ember)" "$(st "$m" microvm)" "$([ -n "$p" ] && st "$p" pc)"
done
# Ember's own overhead: the trivial kernel under ember and under bare_kvm,
# alternately (so both see the same load on a shared host); medians of the
# paired differences.
echo "# Ember's own overhead on the trivial kernel: ember - bare_kvm (same VM shape), $((2 * ROUNDS)) alternating pairs (ms)"
for _ in $(seq $((2 * ROUNDS))); do
	b=$("$T" 1 "$OUT/bare_kvm" "$TINY" 2 64)
	e=$(ember_run 1 "$TINY")
	echo "$(f "$b" result_ms) $(f "$e" result_ms) $(f "$b" exit_ms) $(f "$e" exit_ms)"
done >"$OUT/pairs"
col() { awk -v c="$1" '{print $c}' "$OUT/pairs" | median; }
diffcol() { awk -v a="$1" -v b="$2" '{print $b - $a}' "$OUT/pairs" | median; }
echo "start to result: bare $(col 1), ember $(col 2), difference $(diffcol 1 2)"
echo "start to exit:   bare $(col 3), ember $(col 4), difference $(diffcol 3 4)   (exit - result: KVM's VM teardown)"

echo "# 2. whole suite, ${#KERNELS[@]} kernels, two at a time (s, median of $SUITE_ROUNDS; QEMU -M pc: 1)"
suite_ember() {
	local s e
	s=$(date +%s%N)
	"$EMBER" test -j2 --timeout 300 "${KERNELS[@]}" >"$OUT/suite.ember" 2>&1
	e=$(date +%s%N)
	echo "$(( (e - s) / 1000000 ))" | awk '{printf "%.3f\n", $1 / 1000}'
}
suite_qemu() {  # MACHINE
	local s e
	s=$(date +%s%N)
	printf '%s\n' "${KERNELS[@]}" | xargs -P2 -I{} sh -c 'exec timeout 600 "$@" -kernel "$0" </dev/null >/dev/null 2>&1' \
		{} "$QEMU" "${QARGS[@]}" -M "$1"
	e=$(date +%s%N)
	echo "$(( (e - s) / 1000000 ))" | awk '{printf "%.3f\n", $1 / 1000}'
}
es=$(for _ in $(seq "$SUITE_ROUNDS"); do suite_ember; done | median)
echo "ember test -j2:       $es   ($(grep -E 'passed, .* failed' "$OUT/suite.ember"))"
ms=$(for _ in $(seq "$SUITE_ROUNDS"); do suite_qemu "$MICROVM"; done | median)
echo "qemu -M microvm -P2:  $ms   ember/qemu $(ratio "$es" "$ms")"
if [ "$PC_ROUNDS" -gt 0 ]; then
	ps=$(suite_qemu pc)
	echo "qemu -M pc -P2:       $ps   ember/qemu $(ratio "$es" "$ps")"
fi

echo "# 3. port-I/O exit round trip, OUT+IN of port 0xe0 (ns per pair: median batch / best batch, median of 3 runs)"
PIO=
for k in "${KERNELS[@]}"; do [ "$(basename "$k")" = pio_roundtrip.flat ] && PIO=$k; done
pio() {  # CMD...: "median best"
	local i out
	for i in 1 2 3; do
		out=$("$@" </dev/null 2>/dev/null)
		echo "$(echo "$out" | sed -n 's/^pio_roundtrip_ns=//p') $(echo "$out" | sed -n 's/^pio_roundtrip_min_ns=//p')"
	done | sort -n | sed -n 2p
}
if [ -n "$PIO" ]; then
	pe=$(pio "$EMBER" run --kernel "$PIO" --test-devices --memory 64M --cpus 2)
	pm=$(pio timeout 120 "$QEMU" "${QARGS[@]}" -M "$MICROVM" -kernel "$PIO")
	echo "ember:            $pe"
	echo "qemu -M microvm:  $pm   ember/qemu (best) $(ratio "${pe#* }" "${pm#* }")"
	if [ "$PC_ROUNDS" -gt 0 ]; then
		pp=$(pio timeout 300 "$QEMU" "${QARGS[@]}" -M pc -kernel "$PIO")
		echo "qemu -M pc:       $pp   ember/qemu (best) $(ratio "${pe#* }" "${pp#* }")"
	fi
	# The VMM's own share of an exit: user-space cycles of the whole run
	# with 45 batches minus with 15, over the 6000 exits in between.
	if command -v perf >/dev/null && perf stat -e cycles:u true >/dev/null 2>&1; then
		ucyc() { perf stat -x, -e cycles:u "$@" </dev/null 2>&1 >/dev/null | awk -F, '/cycles:u/ {print $1}'; }
		per_exit() {  # CMD... (batches=N is appended by the caller's function)
			local a b
			a=$("$@" 15); b=$("$@" 45)
			awk -v a="$a" -v b="$b" 'BEGIN {printf "%.0f", (b - a) / 6000}'
		}
		ember_pio() { ucyc "$EMBER" run --kernel "$PIO" --test-devices --memory 64M --cpus 2 --cmdline "batches=$1"; }
		qemu_pio() { ucyc timeout 120 "$QEMU" "${QARGS[@]}" -M "$MICROVM" -kernel "$PIO" -append "batches=$1"; }
		ce=$(for _ in 1 2 3; do per_exit ember_pio; echo; done | median)
		cq=$(for _ in 1 2 3; do per_exit qemu_pio; echo; done | median)
		echo "VMM user-space cycles per port-I/O exit (perf cycles:u): ember $ce, qemu -M microvm $cq, ratio $(ratio "$ce" "$cq")"
		ue=$(ucyc "$EMBER" run --kernel "$PIO" --test-devices --memory 64M --cpus 2)
		uq=$(ucyc timeout 120 "$QEMU" "${QARGS[@]}" -M "$MICROVM" -kernel "$PIO")
		echo "VMM user-space cycles for the whole pio_roundtrip run: ember $ue, qemu -M microvm $uq, ratio $(ratio "$ue" "$uq")"
	fi
else
	echo "no pio_roundtrip.flat among the kernels"
fi
