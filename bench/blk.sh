#!/usr/bin/env bash
# virtio-blk: Ember against QEMU 7.2, the same guest-kit kernel
# (tests/guest/kernels/blk_bench.c, booted by QEMU through its PVH note) on
# the same pre-allocated raw image in the page cache. Prints a table of
# sequential 1 MiB write/read throughput, 4 KiB random read/write IOPS and
# the VMM-side CPU time per request (all threads but the vCPU thread,
# between the guest's BENCH-START and BENCH-END lines), with Ember/QEMU
# ratios. Higher is better except for the cost row.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=${EMBER:-$ROOT/build/ember}
KERNEL=${KERNEL:-$ROOT/build/guest/blk_bench.elf}
QEMU=${QEMU:-qemu-system-x86_64}
MIB=${MIB:-512}          # MiB per sequential pass
IOS=${IOS:-50000}        # requests per random pass
QEMU_AIO=${QEMU_AIO:-threads}
REPEAT=${REPEAT:-3}      # runs per VMM; the table shows each row's median
TMP=$(mktemp -d /tmp/ember-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for f in "$EMBER" "$KERNEL"; do
	[ -e "$f" ] || { echo "bench/blk.sh: $f missing (make all)"; exit 1; }
done
command -v "$QEMU" >/dev/null || { echo "bench/blk.sh: $QEMU not installed (apt-get install qemu-system-x86)"; exit 1; }
[ -w /dev/kvm ] || { echo "bench/blk.sh: needs /dev/kvm"; exit 1; }

IMG=$TMP/disk.img
SECTORS=$((256 * 2048))
fallocate -l 256M "$IMG"
cat "$IMG" >/dev/null

# cpu_ms PID VCPU_RE: CPU time (ms) of PID's threads whose name does not
# match VCPU_RE.
cpu_ms() {
	local pid=$1 re=$2 t sum=0 hz
	hz=$(getconf CLK_TCK)
	for t in /proc/"$pid"/task/*; do
		local comm stat
		comm=$(cat "$t/comm" 2>/dev/null) || continue
		[[ $comm =~ $re ]] && continue
		stat=$(cat "$t/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		read -r -a f <<<"$stat"
		sum=$((sum + f[11] + f[12]))
	done
	echo $((sum * 1000 / hz))
}

# measure NAME VCPU_RE CMD...: run, sample the VMM-side CPU at the markers.
measure() {
	local name=$1 re=$2; shift 2
	local out=$TMP/$name.out
	"$@" </dev/null >"$out" 2>&1 &
	local pid=$! start="" end="" t=0
	while kill -0 "$pid" 2>/dev/null && [ $t -lt 6000 ]; do
		if [ -z "$start" ] && grep -qs '^BENCH-START' "$out"; then start=$(cpu_ms "$pid" "$re"); fi
		if [ -n "$start" ] && grep -qs '^BENCH-END' "$out"; then end=$(cpu_ms "$pid" "$re"); break; fi
		sleep 0.05
		t=$((t + 1))
	done
	wait "$pid"
	if [ -z "$start" ] || [ -z "$end" ] || grep -q '^not ok' "$out"; then
		echo "bench/blk.sh: the $name run failed:"; tail -n 20 "$out"; exit 1
	fi
	local reqs
	reqs=$(sed -n 's/^REQUESTS \([0-9]*\).*/\1/p' "$out" | tr -d '\r')
	echo "cost $(( (end - start) * 1000000 / reqs ))" >>"$TMP/$name.cost"    # ns per request
	grep '^RESULT' "$out" | tr -d '\r' | awk '{print $2, $3}' >>"$TMP/$name.cost"
}

# median FILE METRIC
median() {
	awk -v m="$2" '$1 == m {print $2}' "$1" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

ARGS="sectors=$SECTORS mib=$MIB ios=$IOS"
for i in $(seq "$REPEAT"); do
measure ember '^vcpu' "$EMBER" run --kernel "$KERNEL" --memory 256M --debug-exit --disk "$IMG" --cmdline "$ARGS"
measure qemu '^CPU ' "$QEMU" -accel kvm -m 256 -smp 1 -nographic -nodefaults -serial stdio \
	-device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$KERNEL" -append "$ARGS" \
	-drive file="$IMG",format=raw,if=none,id=d0,cache=writeback,aio="$QEMU_AIO" \
	-device virtio-blk-pci,drive=d0,disable-legacy=on
done

echo "virtio-blk, guest-kit kernel polling at CPL3, $(nproc) host CPUs, $(uname -r), QEMU aio=$QEMU_AIO, median of $REPEAT runs"
printf '%-28s %14s %14s %10s\n' "" Ember "QEMU 7.2" Ember/QEMU
for m in seq-write-1M seq-read-1M rand-read-4K rand-write-4K cost; do
	e=$(median "$TMP/ember.cost" "$m")
	q=$(median "$TMP/qemu.cost" "$m")
	case $m in
	seq-*) label="$m (MiB/s)";;
	rand-*) label="$m (IOPS)";;
	cost) label="VMM CPU per request (ns)";;
	esac
	ratio=$(awk -v e="$e" -v q="$q" 'BEGIN { if (q > 0) printf "%.2f", e / q; else print "-" }')
	printf '%-28s %14s %14s %10s\n' "$label" "$e" "$q" "$ratio"
done
echo "(cost: lower is better, so a ratio below 1.00 means Ember spends less)"
