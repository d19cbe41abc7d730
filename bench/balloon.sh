#!/usr/bin/env bash
# Free page reporting: host memory of guest RAM over time while the guest
# (tests/guest/kernels/balloon.c, mode=report) touches and frees MIB in a
# loop, under Ember with reporting off, dontneed and free, and under QEMU 7.2
# (virtio-balloon-pci,free-page-reporting=on over a shared memfd backend,
# the same kind of RAM as Ember's) in the same run.
#
# "Host memory of guest RAM" is what the guest RAM memfd holds: st_blocks of
# /proc/PID/fd/N, sampled every 20 ms from outside the VMM. Per loop: the time
# from the guest's "freeing" line (printed before it frees) to the moment 90%
# of the freed memory is back, and the VMM's CPU time (all threads but the
# vCPUs, from /proc/PID/task/TID/schedstat: nanoseconds, not 10 ms ticks)
# from "freeing" to the end of the guest's hold (its report pass inside),
# per MiB given back.
# Guest RAM on transparent huge pages needs the host's
# /sys/kernel/mm/transparent_hugepage/shmem_enabled at advise (or
# within_size, always): Ember then advises its RAM (MADV_HUGEPAGE; QEMU 7.2
# advises too but maps its memfd 4 KiB aligned, so no huge page fits), and
# the peak of the host's ShmemHugePages during each run is shown.
# The guest reports 2 s after its first free, as Linux does.
# Timelines: build/bench/balloon-NAME.tsv (ms since start, MiB).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=${EMBER:-$ROOT/build/ember}
KERNEL=$ROOT/build/guest/balloon.elf
QEMU=${QEMU:-qemu-system-x86_64}
MIB=${MIB:-512}
LOOPS=${LOOPS:-3}
MEM=${MEM:-1024}
HOLD_MS=${HOLD_MS:-4000}
OUT=$ROOT/build/bench
TMP=$(mktemp -d /tmp/ember-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
[ -w /dev/kvm ] || { echo "bench/balloon.sh: needs /dev/kvm"; exit 1; }
[ -x "$EMBER" ] && [ -f "$KERNEL" ] || { echo "bench/balloon.sh: make all first"; exit 1; }
HAVE_QEMU=1
command -v "$QEMU" >/dev/null || { echo "# $QEMU not installed: Ember only"; HAVE_QEMU=0; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# memfd_of PID: the PID's biggest memfd (its guest RAM), as /proc/PID/fd/N.
memfd_of() {
	local best=0 f b path=''
	for f in /proc/"$1"/fd/*; do
		[[ $(readlink "$f" 2>/dev/null) == /memfd:* ]] || continue
		b=$(stat -L -c %s "$f" 2>/dev/null) || continue
		if [ "$b" -gt "$best" ]; then best=$b; path=$f; fi
	done
	echo "$path"
}

# cpu_us PID VCPU_RE: CPU time (us) of the threads whose name does not
# match: schedstat's first field, the time on a CPU in ns.
cpu_us() {
	local pid=$1 re=$2 t sum=0 comm ns
	for t in /proc/"$pid"/task/*; do
		comm=$(cat "$t/comm" 2>/dev/null) || continue
		[[ $comm =~ $re ]] && continue
		read -r ns _ 2>/dev/null <"$t/schedstat" || continue
		sum=$((sum + ns))
	done
	echo $((sum / 1000))
}

# held_mib FD: what the memfd at /proc/PID/fd/N holds now, in MiB.
held_mib() {
	local b=0
	[ -n "$1" ] && b=$(stat -L -c %b "$1" 2>/dev/null || echo 0)
	echo $((b * 512 / 1048576))
}

# The host's ShmemHugePages now, in MiB.
shmem_huge_mib() { awk '/^ShmemHugePages:/ { print int($2 / 1024) }' /proc/meminfo; }

# run NAME VCPU_RE CMD...: samples into $OUT/balloon-NAME.tsv; per loop
# "loop N free_mib back_ms cpu_us" lines into $TMP/NAME.res, the peak of
# ShmemHugePages (MiB) into $TMP/NAME.huge.
run() {
	local name=$1 re=$2; shift 2
	local out=$TMP/$name.out tl=$OUT/balloon-$name.tsv res=$TMP/$name.res
	: >"$out"; : >"$tl"; : >"$res"
	"$@" </dev/null >"$out" 2>&1 &
	local pid=$! t0 now m loop=0 seen=0 freeing_at='' before=0 low=0 back='' cpu0=0 reported=0 fd=''
	local huge=0 h
	t0=$(now_ms)
	while kill -0 "$pid" 2>/dev/null; do
		now=$(($(now_ms) - t0))
		[ -n "$fd" ] || fd=$(memfd_of "$pid")
		m=$(held_mib "$fd")
		echo "$now $m" >>"$tl"
		h=$(shmem_huge_mib)
		[ "${h:-0}" -gt $huge ] && huge=$h
		local n
		n=$(grep -c '^balloon: freeing' "$out")
		if [ "$n" -gt "$seen" ]; then
			# sampled again: the guest may have finished touching since
			seen=$n; freeing_at=$now; before=$(held_mib "$fd"); low=$before; back=''; cpu0=$(cpu_us "$pid" "$re")
			reported=$(grep -c '^balloon: reported at' "$out")
		fi
		[ -n "$freeing_at" ] && [ "$m" -lt "$low" ] && low=$m
		if [ -n "$freeing_at" ] && [ -z "$back" ] && [ $(((before - m) * 10)) -ge $((MIB * 9)) ]; then
			back=$((now - freeing_at))
		fi
		# The guest's hold after the free (its report pass inside) is over:
		# one line per loop. Given back: the lowest point in the window (by
		# the time the line is seen the guest may be touching again).
		if [ -n "$freeing_at" ] && [ "$(grep -c '^balloon: reported at\|^ok .* nothing reported' "$out")" -gt "$reported" ]; then
			loop=$((loop + 1))
			echo "loop $loop $((before - low)) ${back:--} $(($(cpu_us "$pid" "$re") - cpu0))" >>"$res"
			freeing_at=''
		fi
		if [ $now -gt 180000 ]; then kill -KILL "$pid"; fi
		sleep 0.02
	done
	wait "$pid"
	echo "$huge" >"$TMP/$name.huge"
	if ! grep -q '^SUMMARY: .* 0 failures' "$out"; then
		echo "bench/balloon.sh: the $name run failed:"; tail -n 15 "$out"; return 1
	fi
}

ARGS="mode=report mib=$MIB loops=$LOOPS hold_ms=$HOLD_MS"
ember() {  # NAME BALLOON-OPTS
	run "ember-$1" '^vcpu' "$EMBER" run --kernel "$KERNEL" --memory "${MEM}M" --debug-exit \
		--balloon "$2" --cmdline "$ARGS"
}
ember off stats-interval=0 || exit 1
ember dontneed free-page-reporting || exit 1
ember free free-page-reporting=free || exit 1
qemu() {  # NAME on|off
	run "$1" '^CPU ' "$QEMU" -accel kvm -m "$MEM" -smp 1 -nographic -nodefaults -serial stdio \
		-object memory-backend-memfd,id=ram,size="${MEM}M",share=on -machine memory-backend=ram \
		-device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$KERNEL" -append "$ARGS" \
		-device virtio-balloon-pci,free-page-reporting="$2",disable-legacy=on
}
if [ $HAVE_QEMU = 1 ]; then
	qemu qemu-off off || exit 1
	qemu qemu on || exit 1
fi

THP=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)
echo "free page reporting: guest touches and frees $MIB MiB, $LOOPS loops, ${MEM} MiB guest, $(nproc) host CPUs, $(uname -r), shmem_enabled=${THP:-none}"
printf '%-16s %16s %18s %18s %16s %14s %14s\n' run "given back (MiB)" "90% back after" "VMM CPU per pass" "VMM CPU per GiB" "% core @2s" "ShmemHuge MiB"
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
for r in ember-off ember-dontneed ember-free qemu-off qemu; do
	[ -s "$TMP/$r.res" ] || continue
	back=$(awk '$4 != "-" { print $4 }' "$TMP/$r.res" | median)
	got=$(awk '{ print $3 }' "$TMP/$r.res" | median)
	cpu=$(awk '{ print $5 }' "$TMP/$r.res" | median)
	huge=$(cat "$TMP/$r.huge" 2>/dev/null || echo 0)
	awk -v r="$r" -v got="$got" -v cpu="$cpu" -v back="${back:+$back ms}" -v huge="$huge" 'BEGIN {
		ms = cpu / 1000
		per_gib = got > 0 ? sprintf("%.1f ms", ms / got * 1024) : "-"
		printf "%-16s %16d %18s %15.1f ms %16s %13.2f%% %14d\n", r, got, back ? back : "never", ms, per_gib, ms / 2000 * 100, huge
	}'
done
echo "(medians over the loops; VMM CPU from the guest's free to the end of its hold (${HOLD_MS} ms, the report"
echo " pass inside), vCPU threads excluded, nothing subtracted: the -off rows are the same window without reporting;"
echo " % core @2s: that CPU time as a share of one core if a pass like it came every 2 s;"
echo " ShmemHuge: the host's ShmemHugePages at its peak during the run, all processes)"
echo
echo "host memory of guest RAM (MiB), every 0.5 s:"
for r in ember-off ember-dontneed ember-free qemu-off qemu; do
	[ -s "$OUT/balloon-$r.tsv" ] || continue
	printf '%-16s' "$r"
	awk '{ s = int($1 / 500); if (!(s in v)) { v[s] = $2; if (s > m) m = s } } END { for (i = 0; i <= m; i++) printf " %d", (i in v) ? v[i] : -1; print "" }' "$OUT/balloon-$r.tsv"
done
