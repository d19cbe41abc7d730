#!/usr/bin/env bash
# Snapshots and live migrations of a running stock Linux guest (Debian's
# cloud kernel and the busybox initramfs of tools/linux/build.sh, with
# tests/integration/linux_migration_guest.sh as /ember-test.sh), and the
# CPU model Linux sees. The guest keeps a counter ticking (each tick a record
# written to its virtio-blk disk, the previous one read back, a console
# line with its uptime and date), rewrites and checks 4 MiB of tmpfs in a
# loop, holds 16 MiB of random bytes, and answers commands on its serial
# console (Ember's stdin, a FIFO here). tests/integration/linux_console.py
# reads the consoles.
#
# Boot 1 (--cpu host, 2 vCPUs, 256M, a disk, virtio-net on a tap when this
# host can make a network namespace: every VM runs in one of the test's, so
# taps and addresses never touch this host's network): A --bitmap--> B, a
# migration of B to a destination killed mid-stream (B runs on), B
# --ring--> C (each over the namespace's TCP loopback; a migration is
# tracked by its source's backend: A runs --dirty-tracking bitmap, B ring),
# a snapshot of C, C powered off, the snapshot restored as R. After each
# move: the counter goes on from where it was (the source's console and the
# destination's joined count up by one), the guest's uptime and date move
# on by no more than the downtime plus two tick gaps (restore: from the
# snapshot's moment), the guest answers on the new console with no disk or
# tmpfs mismatch seen and its 16 MiB unchanged, the host pings it through
# the new tap; the disk image then holds every record the ticks say was
# written, and the kernel printed no BUG, WARNING or stall.
# Boot 2 (--cpu x86-64-v2, 1 vCPU): /proc/cpuinfo has the model's flags
# (each of FEATS exactly when `ember cpu` lists it, plus the model's own
# musts), then a migration (bitmap) to --cpu x86-64-v2: the counter goes
# on, the flags are the same there.
# Boot 3 (--cpu host,-avx2, 2 vCPUs), beside boot 2: the flags again.
# Where the host's KVM never sees a guest's XSETBV (build/guest/xcr0.elf
# says so: the nested test host), Linux runs without XSAVE: the XSAVE
# features are left out of the flag checks and the checks that Linux takes
# Ember's XSAVE layout are skipped, saying why.
#
# A stock kernel needs hardware virtualization to reach /init: on kvm_pvm
# (see test_linux_boot.sh) every check is skipped saying so; tests/run.sh
# runs this script in the nested SVM test host there (about 4 minutes).
# Times in the test host are TCG's: printed as "#" lines, never checked
# beyond the clock's bounds.
# test-host: direct
# Not nested-ready yet: in the TCG test host, boots 2 and 3 (run beside
# each other) triple-fault right after the i8042 probe in about half the
# runs (2 of 4 on 2026-12-08; boot 1 never did); not yet known whether
# Ember or QEMU's nested SVM is at fault. EMBER_TEST_HOST=nested runs it.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

# add_move TAG: the checks of one live migration (move, below), onto NAMES
add_move() {
	NAMES+=("$1: completes" "$1: the source exits 0 after the hand-over"
		"$1: the counter goes on on the destination" "$1: the guest clock goes on")
}
NAMES=("boot: the test script runs on 2 vCPUs" "network: the host pings the guest")
add_move "migrate bitmap"
NAMES+=("migrate bitmap: the guest answers on the new console, its memory and disk intact"
	"migrate bitmap: network comes back"
	"failed migration: reported" "failed migration: the source guest keeps running")
add_move "migrate ring"
NAMES+=("migrate ring: the guest answers on the new console, its memory and disk intact"
	"migrate ring: network comes back"
	"snapshot: written while the guest runs" "snapshot: the guest runs on after it"
	"poweroff after the moves: ember exits 0"
	"disk: the image holds every record written across the migrations"
	"restore: the counter goes on from the snapshot" "restore: the guest clock goes on from the snapshot"
	"restore: the guest answers on its console, its memory and disk intact"
	"restore: network comes back" "restore: poweroff ends ember with status 0"
	"disk: the image holds every record after the restore"
	"boot 1: the kernel reports no BUG, WARNING or stall"
	"boot 1: Linux takes the XSAVE layout of --cpu host")
BOOT1=("${NAMES[@]}")
NAMES=("x86-64-v2: /proc/cpuinfo follows the model")
add_move "x86-64-v2: migrate"
NAMES+=("x86-64-v2: the destination guest sees the same flags" "x86-64-v2: poweroff ends ember with status 0")
BOOT2=("${NAMES[@]}")
CHECKS=("linux guest build" "${BOOT1[@]}" "${BOOT2[@]}"
	"host,-avx2: /proc/cpuinfo follows the model" "host,-avx2: Linux takes its XSAVE layout"
	"ember: no sanitizer report")
require_kvm "${CHECKS[@]}"
if [ -d /sys/module/kvm_pvm ]; then
	for n in "${CHECKS[@]}"; do
		skip "$n" "kvm_pvm: no hardware virtualization, a stock kernel never reaches /init here (see test_linux_boot.sh)"
	done
	exit 0
fi

linux_guest_build "${CHECKS[@]}"
echo "# guest: $(head -n 1 "$LINUX/kernel.txt"), ember: $EMBER"
T0=$(date +%s)

# Whether this host's KVM sees the guest's XSETBV (build/guest/xcr0.elf). The
# nested test host's QEMU TCG does not deliver its SVM guest's XSETBV
# intercept: KVM keeps XCR0 = 1, puts it back at every entry and never
# recomputes CPUID.(0xD,0).EBX, so Linux finds the XSAVE layout inconsistent
# ("XSAVE consistency problem", a WARNING) and runs without XSAVE: no xsave,
# avx, avx2, fma, f16c... in /proc/cpuinfo, whatever the CPU model says.
XSETBV_OK=1 XSAVE_WHY=
run_vm "$TMP/xcr0.out" 120 --kernel "$GUEST/xcr0.elf" --debug-exit
if [ "$RC" != 1 ] && grep -q "^not ok .*XCR0 survives exits" "$TMP/xcr0.out"; then
	XSETBV_OK=0
	XSAVE_WHY="this host's KVM never sees the guest's XSETBV (xcr0.elf: $(grep -m1 '^after an exit' "$TMP/xcr0.out"), written $(sed -n 's/^XCR0 written \([^,]*\),.*/\1/p' "$TMP/xcr0.out")): Linux runs without XSAVE here"
	echo "# $XSAVE_WHY"
elif [ "$RC" != 1 ]; then
	echo "# xcr0.elf exited $RC:"; sed 's/^/#   /' "$TMP/xcr0.out" | tail -n 5
fi
XSAVE_FEATS=" xsave avx avx2 fma f16c vaes avx512f "

INITRD=$TMP/initrd
linux_initrd_with "$ROOT/tests/integration/linux_migration_guest.sh" "$INITRD"
CHECK=(python3 "$ROOT/tests/integration/linux_console.py")
CMDLINE="console=ttyS0 loglevel=5 panic=-1"
PORT=$((20000 + $$ % 20000))
MAC=52:54:00:4c:4d:01
GUEST_IP=192.0.2.2 HOST_IP=192.0.2.1   # TEST-NET-1, in the namespace below
show() { tr -d '\r' <"$1" | sed 's/^/#   /' | tail -n "${2:-15}"; }

# The VMs this script started, killed (by pid) however it ends.
declare -A PID=() FD=()
NS=   # the network namespace, below
cleanup() {
	local p
	for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -z "$NS" ] || ip netns del "$NS" 2>/dev/null
	[ -n "${KEEP_TMP:-}" ] && echo "# outputs kept in $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

# vm NAME ARGS...: `ember run ARGS` in the background, its stdin a FIFO
# (send NAME LINE types into the guest's console), the console in
# $TMP/NAME.out, Ember's messages in $TMP/NAME.err.
vm() {
	local name=$1 fd; shift
	mkfifo "$TMP/$name.in"
	exec {fd}<>"$TMP/$name.in"   # read-write: opening it never blocks, and no EOF
	FD[$name]=$fd
	"${NS_EXEC[@]}" "$EMBER" run "$@" <"$TMP/$name.in" >"$TMP/$name.out" 2>"$TMP/$name.err" {fd}>&- &
	PID[$name]=$!
}
send() { echo "$2" >&"${FD[$1]}"; }
# has NAME ERE: the console has a line matching
has() { tr -d '\r' <"$TMP/$1.out" | grep -Eqa -- "$2"; }
# wait_for NAME ERE SECS: until the console has such a line, or ember exited
wait_for() {
	local i
	for ((i = 0; i < $3 * 4; i++)); do
		has "$1" "$2" && return 0
		kill -0 "${PID[$1]}" 2>/dev/null || { has "$1" "$2"; return; }
		sleep 0.25
	done
	return 1
}
last_tick() { "${CHECK[@]}" last "$TMP/$1.out"; }
# vm_exit NAME SECS: VRC = its exit status (124: still running, killed)
vm_exit() {
	local i
	for ((i = 0; i < $2 * 4; i++)); do kill -0 "${PID[$1]}" 2>/dev/null || break; sleep 0.25; done
	if kill -0 "${PID[$1]}" 2>/dev/null; then kill -9 "${PID[$1]}"; fi
	VRC=0; wait "${PID[$1]}" 2>/dev/null || VRC=$?
	[ "$i" -lt $(($2 * 4)) ] || VRC=124
	local fd=${FD[$1]}
	exec {fd}>&-
	unset "PID[$1]" "FD[$1]"
}
# check_poweroff CHECK NAME: the guest in NAME stops its test (s), powers
# off, and ember exits 0 with the guest's memory and disk checks clean.
check_poweroff() {
	send "$2" s
	wait_for "$2" "EMBER-T: stopped " 120
	vm_exit "$2" 60
	if [ "$VRC" = 0 ] && has "$2" "EMBER-T: stopped disk_bad=0 churn_rounds=[0-9]+ churn_bad=0"; then
		pass "$1"
		tr -d '\r' <"$TMP/$2.out" | grep -a "EMBER-T: stopped" | sed 's/^/# /'
	else
		fail "$1" "exit $VRC"; show "$TMP/$2.out" 5; show "$TMP/$2.err" 5
	fi
}
# listening PORT: wait until a destination listens there
listening() {
	local i
	for ((i = 0; i < 120; i++)); do
		"${NS_EXEC[@]}" ss -ltn 2>/dev/null | grep -q "127.0.0.1:$1 " && return 0
		sleep 0.25
	done
	return 1
}
# check_py NAME ARGS...: a linux_console.py verdict as a check
check_py() {
	local name=$1 out; shift
	out=$("${CHECK[@]}" "$@" 2>&1)
	case $out in
	OK*) pass "$name"; echo "# $name: ${out#OK }" ;;
	*) fail "$name" "${out#FAIL }" ;;
	esac
}

# --- the network: a tap per VM, the host's address moved to the newest --------
# Every VM runs in a network namespace of its own (as test_virtio's net
# check), so its taps and addresses never touch this host's network; the
# migrations use that namespace's loopback.
NET=0 NS_EXEC=()
if command -v ip >/dev/null && [ -c /dev/net/tun ] && ip netns add "elmig$$" 2>"$TMP/ns.err"; then
	NS=elmig$$ NS_EXEC=(ip netns exec "$NS")
	if ip -n "$NS" link set lo up && ip -n "$NS" tuntap add dev elmprobe mode tap 2>>"$TMP/ns.err"; then
		ip -n "$NS" tuntap del dev elmprobe mode tap
		NET=1
	fi
fi
NET_WHY="no network namespace with a tap here ($(head -n 1 "$TMP/ns.err" 2>/dev/null))"
PING=(ping)
command -v ping >/dev/null || PING=(busybox ping)
netargs() { [ "$NET" = 1 ] && echo "--net tap=elm$1,mac=$MAC"; }
# net_to NAME: the host's address on NAME's tap (Ember made it)
net_to() {
	local i
	[ "$NET" = 1 ] || return 1
	for ((i = 0; i < 40; i++)); do ip -n "$NS" link show "elm$1" >/dev/null 2>&1 && break; sleep 0.25; done
	ip -n "$NS" addr flush to "$HOST_IP/24" 2>/dev/null
	ip -n "$NS" link set "elm$1" up && ip -n "$NS" addr add "$HOST_IP/24" dev "elm$1"
}
# check_ping NAME VM: the host reaches the guest through VM's tap
check_ping() {
	local name=$1 vmn=$2 i
	if [ "$NET" != 1 ]; then skip "$name" "$NET_WHY"; return; fi
	if ! net_to "$vmn"; then fail "$name" "cannot put $HOST_IP on elm$vmn"; return; fi
	for ((i = 0; i < 5; i++)); do
		if "${NS_EXEC[@]}" "${PING[@]}" -c 1 -W 10 "$GUEST_IP" >"$TMP/ping.out" 2>&1; then
			pass "$name"; return
		fi
	done
	fail "$name" "no answer from $GUEST_IP through elm$vmn"
	sed 's/^/#   /' "$TMP/ping.out" | tail -n 3
}

# --- the guest's answers -------------------------------------------------------------------
BLOB=
# check_answers NAME VM: "p TOKEN" answered with no mismatch, the churner still
# going, "m" the blob's first MD5
check_answers() {
	local name=$1 vmn=$2 tok=x$RANDOM line rounds
	send "$vmn" "p $tok"
	if ! wait_for "$vmn" "EMBER-T: pong $tok " 60; then
		fail "$name" "no answer to 'p $tok' in 60 s"; show "$TMP/$vmn.out" 5; return
	fi
	send "$vmn" m
	wait_for "$vmn" "EMBER-T: blob " 60 && sleep 0.5
	line=$(tr -d '\r' <"$TMP/$vmn.out" | grep -a "EMBER-T: pong $tok " | tail -n 1)
	rounds=$(sed -n 's/.*churn_rounds=\([0-9]*\).*/\1/p' <<<"$line")
	local blob
	blob=$(tr -d '\r' <"$TMP/$vmn.out" | sed -n 's/^EMBER-T: blob //p' | tail -n 1)
	if [[ $line != *" disk_bad=0 "* ]] || [[ $line != *" churn_bad=0"* ]]; then
		fail "$name" "the guest saw mismatches: ${line#EMBER-T: }"
		tr -d '\r' <"$TMP/$vmn.out" | grep -a MISMATCH | head -n 3 | sed 's/^/#   /'
	elif [ -z "$BLOB" ] || [ "$blob" != "$BLOB" ]; then
		fail "$name" "the 16 MiB blob's MD5 is now '${blob:-none}', was '$BLOB'"
	elif [ "${rounds:-0}" -lt 1 ]; then
		fail "$name" "the churner never finished a round: ${line#EMBER-T: }"
	else
		pass "$name"
		echo "# $name: ${line#EMBER-T: }"
	fi
}

# check_ticking NAME VM SECS: the guest ticks at least 3 more times
check_ticking() {
	local n
	n=$(last_tick "$2")
	if wait_for "$2" "EMBER-T: tick n=$((n + 3)) " "$3"; then pass "$1"
	else fail "$1" "the counter stopped at n=$(last_tick "$2") (n=$n when the wait began)"; show "$TMP/$2.out" 5; fi
}

# move SRC DST TAG DST_ARGS...: a live migration of SRC to a new VM DST over
# TCP loopback, and the checks after it ("TAG: ..."). SRC_BACKEND: the
# source's dirty tracking, which the migration uses; DST_ARGS go to the
# destination (the same devices as SRC's: --disk, --net when NET_TOO=1).
move() {
	local src=$1 dst=$2 tag=$3 port=$((PORT + ${#PID[@]} + RANDOM % 50)) net=(); shift 3
	# shellcheck disable=SC2207
	[ "${NET_TOO:-0}" = 1 ] && net=($(netargs "$dst"))
	vm "$dst" --incoming "tcp:127.0.0.1:$port" --disk "$IMG" "${net[@]}" --api-socket "$TMP/$dst.sock" "$@"
	listening "$port" || echo "# $dst is not listening on $port after 30 s"
	local t=$SECONDS rc=0
	timeout -k 5 600 "$EMBER" ctl "$TMP/$src.sock" migrate "tcp:127.0.0.1:$port" >"$TMP/$tag.ctl" 2>&1 || rc=$?
	echo "# $tag: ctl exited $rc after $((SECONDS - t)) s: $(grep -a '^completed' "$TMP/$tag.ctl")"
	if [ "$rc" = 0 ] && grep -q "^completed: .* downtime .*($SRC_BACKEND)" "$TMP/$tag.ctl"; then
		pass "$tag: completes"
	else
		fail "$tag: completes" "ctl exited $rc"; show "$TMP/$tag.ctl" 6; show "$TMP/$src.err" 5; show "$TMP/$dst.err" 5
	fi
	vm_exit "$src" 60
	expect_eq "$tag: the source exits 0 after the hand-over" "$VRC" 0
	local n
	n=$(last_tick "$src")
	wait_for "$dst" "EMBER-T: tick n=$((n + 4)) " 120
	check_py "$tag: the counter goes on on the destination" continues "$TMP/$src.out" "$TMP/$dst.out"
	local down
	down=$(sed -n 's/^completed: .*downtime \([0-9.]*\) ms.*/\1/p' "$TMP/$tag.ctl")
	[ -n "$down" ] || down=0
	check_py "$tag: the guest clock goes on" clock "$TMP/$src.out" "$TMP/$dst.out" "$down"
}

# check_flags NAME SPEC CONSOLE: the guest's flags, on every CPU alike, have
# each of these features exactly when `ember cpu --cpu SPEC` lists it, plus
# the model's own musts (MUST: "+f" present, "-f" absent).
FEATS="pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand fsgsbase bmi1 avx2
smep bmi2 erms adx smap clflushopt clwb sha_ni lahf_lm abm sse4a rdtscp pdpe1gb avx512f vaes"
check_flags() {
	local name=$1 spec=$2 log=$3 want got f bad=()
	want=" $("$EMBER" cpu --cpu "$spec" 2>/dev/null | sed -n 's/^features: //p') "
	got=" $(tr -d '\r' <"$log" | sed -n 's/^EMBER-T: flags //p' | tail -n 1) "
	if [ "$want" = "  " ] || [ "$got" = "  " ]; then
		fail "$name" "no flags (ember cpu: ${#want} chars, guest: ${#got})"; show "$log" 5; return
	fi
	for f in $FEATS; do
		if [ "$XSETBV_OK" = 0 ] && [[ $XSAVE_FEATS == *" $f "* ]]; then continue; fi
		if [[ $want == *" $f "* ]] && [[ $got != *" $f "* ]]; then bad+=("$f missing")
		elif [[ $want != *" $f "* ]] && [[ $got == *" $f "* ]]; then bad+=("$f present"); fi
	done
	for f in $MUST; do
		if [ "$XSETBV_OK" = 0 ] && [[ $XSAVE_FEATS == *" ${f#?} "* ]] && [[ $f == +* ]]; then continue; fi
		case $f in
		+*) [[ $got == *" ${f#+} "* ]] || bad+=("${f#+} missing (the model has it)") ;;
		-*) [[ $got != *" ${f#-} "* ]] || bad+=("${f#-} present (the model lacks it)") ;;
		esac
	done
	if ! tr -d '\r' <"$log" | grep -q '^EMBER-T: flagsets 1 '; then
		bad+=("the CPUs differ: $(tr -d '\r' <"$log" | grep -a 'EMBER-T: flagsets')")
	fi
	if [ ${#bad[@]} -eq 0 ]; then
		pass "$name"
		[ "$XSETBV_OK" = 1 ] || echo "# $name: not compared:$XSAVE_FEATS($XSAVE_WHY)"
	else fail "$name" "${bad[*]}"; fi
}
# check_xsave NAME CONSOLE: Linux took the guest's XSAVE layout (CPUID 0xD)
check_xsave() {
	if [ "$XSETBV_OK" = 0 ]; then skip "$1" "$XSAVE_WHY"
	elif tr -d '\r' <"$2" | grep -qa "XSAVE consistency problem"; then
		fail "$1" "$(tr -d '\r' <"$2" | grep -a -m1 "XSAVE consistency problem")"
		tr -d '\r' <"$2" | grep -a 'CPUID\[0d, 0[0-9]\]' | head -n 4 | sed 's/^/#   /'
	else pass "$1"; fi
}

# ============================== boot 1: host, 2 vCPUs ===============================
IMG=$TMP/disk1.img
truncate -s 16M "$IMG"
# shellcheck disable=SC2046
vm A --kernel "$LINUX/bzImage" --initrd "$INITRD" --memory 256M --cpus 2 --cmdline "$CMDLINE" \
	--disk "$IMG" $(netargs A) --api-socket "$TMP/A.sock" --dirty-tracking bitmap
if wait_for A "EMBER-T: tick n=3 " 300 && has A "EMBER-T: cpus=2"; then
	pass "boot: the test script runs on 2 vCPUs"
	echo "# boot 1: ticking after $(($(date +%s) - T0)) s"
	BLOB=$(tr -d '\r' <"$TMP/A.out" | sed -n 's/^EMBER-T: blob //p' | head -n 1)
else
	fail "boot: the test script runs on 2 vCPUs" "no third tick in 300 s (ember $(kill -0 "${PID[A]}" 2>/dev/null && echo running || echo exited))"
	show "$TMP/A.out" 20; show "$TMP/A.err" 5
	for n in "${BOOT1[@]:1}"; do skip "$n" "boot 1 did not get to its test script"; done
	kill -9 "${PID[A]}" 2>/dev/null
	BOOT1_FAILED=1
fi

if [ -z "${BOOT1_FAILED:-}" ]; then
	if [ "$NET" = 1 ]; then send A "n $GUEST_IP"; wait_for A "EMBER-T: net " 60; fi
	check_ping "network: the host pings the guest" A

	NET_TOO=$NET SRC_BACKEND=bitmap move A B "migrate bitmap" --dirty-tracking ring
	check_answers "migrate bitmap: the guest answers on the new console, its memory and disk intact" B
	check_ping "migrate bitmap: network comes back" B

	# A destination killed once the stream is under way (2 MB/s: ~45 s of RAM).
	port=$((PORT + 90))
	# shellcheck disable=SC2046
	vm F --incoming "tcp:127.0.0.1:$port" --disk "$IMG" $(netargs F)
	listening "$port" || echo "# F is not listening on $port after 30 s"
	timeout -k 5 300 "$EMBER" ctl "$TMP/B.sock" migrate "tcp:127.0.0.1:$port" --bandwidth 2 >"$TMP/fail.ctl" 2>&1 &
	cpid=$!
	for ((i = 0; i < 240; i++)); do
		grep -Eq '^pass 1: sent ([1-9][0-9]*|0\.[1-9])' "$TMP/fail.ctl" && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.25
	done
	echo "# failed migration: killing the destination at: $(grep '^pass' "$TMP/fail.ctl" | tail -n 1)"
	kill -9 "${PID[F]}"
	rc=0; wait "$cpid" || rc=$?
	vm_exit F 10
	if [ "$rc" != 0 ] && grep -q "migration failed" "$TMP/fail.ctl"; then pass "failed migration: reported"
	else fail "failed migration: reported" "ctl exited $rc"; show "$TMP/fail.ctl" 5; fi
	grep -a "migration failed" "$TMP/fail.ctl" | head -n 1 | sed 's/^/# ctl said: /'
	n=$(last_tick B)
	tok=f$RANDOM
	if wait_for B "EMBER-T: tick n=$((n + 3)) " 120 && kill -0 "${PID[B]}" 2>/dev/null && { send B "p $tok"; wait_for B "EMBER-T: pong $tok " 60; }; then
		pass "failed migration: the source guest keeps running"
	else
		fail "failed migration: the source guest keeps running" "ticks stopped at n=$(last_tick B), or no pong"
		show "$TMP/B.out" 5; show "$TMP/B.err" 5
	fi

	NET_TOO=$NET SRC_BACKEND=ring move B C "migrate ring" --dirty-tracking bitmap
	check_answers "migrate ring: the guest answers on the new console, its memory and disk intact" C
	check_ping "migrate ring: network comes back" C

	s0=$(stat -c %s "$TMP/C.out")
	rc=0; timeout -k 5 300 "$EMBER" ctl "$TMP/C.sock" snapshot "$TMP/snap" >"$TMP/snap.ctl" 2>&1 || rc=$?
	s1=$(stat -c %s "$TMP/C.out")
	if [ "$rc" = 0 ] && grep -q "^snapshot .*snap: .* MiB written, paused" "$TMP/snap.ctl"; then
		pass "snapshot: written while the guest runs"; sed 's/^/# /' "$TMP/snap.ctl"
	else fail "snapshot: written while the guest runs" "ctl exited $rc"; show "$TMP/snap.ctl" 5; fi
	check_ticking "snapshot: the guest runs on after it" C 120
	check_poweroff "poweroff after the moves: ember exits 0" C
	HIST="$TMP/A.out+$TMP/B.out+$TMP/C.out"
	check_py "disk: the image holds every record written across the migrations" disk "$IMG" "$HIST"

	# shellcheck disable=SC2046
	vm R --restore "$TMP/snap" --disk "$IMG" $(netargs R) --api-socket "$TMP/R.sock"
	head -c "$s1" "$TMP/C.out" >"$TMP/C.at-snapshot"
	wait_for R "EMBER-T: tick n=$(($("${CHECK[@]}" last "$TMP/C.at-snapshot") + 4)) " 120
	check_py "restore: the counter goes on from the snapshot" restored "$TMP/C.out" "$s0" "$s1" "$TMP/R.out"
	check_py "restore: the guest clock goes on from the snapshot" restored-clock "$TMP/C.out" "$TMP/R.out"
	check_answers "restore: the guest answers on its console, its memory and disk intact" R
	check_ping "restore: network comes back" R
	check_poweroff "restore: poweroff ends ember with status 0" R
	check_py "disk: the image holds every record after the restore" disk "$IMG" "$HIST" "$TMP/R.out"
	xs=(); [ "$XSETBV_OK" = 1 ] || xs=(--except-xsave)
	check_py "boot 1: the kernel reports no BUG, WARNING or stall" complaints "${xs[@]}" "$TMP"/[ABCR].out
	check_xsave "boot 1: Linux takes the XSAVE layout of --cpu host" "$TMP/A.out"
	echo "# boot 1 done after $(($(date +%s) - T0)) s"
fi

# ==================== boots 2 and 3: what Linux sees of the CPU model ====================
IMG=$TMP/disk2.img
truncate -s 16M "$IMG"
vm V --kernel "$LINUX/bzImage" --initrd "$INITRD" --memory 256M --cpus 1 --cpu x86-64-v2 --cmdline "$CMDLINE" \
	--disk "$IMG" --api-socket "$TMP/V.sock" --dirty-tracking bitmap
vm X --kernel "$LINUX/bzImage" --initrd "$INITRD" --memory 256M --cpus 2 --cpu host,-avx2 \
	--cmdline "$CMDLINE ember.lm=flags"
if wait_for V "EMBER-T: tick n=3 " 300; then
	MUST="+sse4_2 +popcnt +cx16 +ssse3 +sse4_1 +pni +lahf_lm -avx -avx2 -xsave -bmi1 -fma -movbe -aes"
	check_flags "x86-64-v2: /proc/cpuinfo follows the model" x86-64-v2 "$TMP/V.out"
	SRC_BACKEND=bitmap move V W "x86-64-v2: migrate" --cpu x86-64-v2 --dirty-tracking bitmap
	send W f
	wait_for W "EMBER-T: flagsets " 60
	tr -d '\r' <"$TMP/W.out" | grep -a '^EMBER-T: flags' >"$TMP/W.flags"
	a=$(tr -d '\r' <"$TMP/V.out" | sed -n 's/^EMBER-T: flags //p' | head -n 1)
	b=$(sed -n 's/^EMBER-T: flags //p' "$TMP/W.flags" | tail -n 1)
	if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "x86-64-v2: the destination guest sees the same flags"
	else fail "x86-64-v2: the destination guest sees the same flags" "source '$a', destination '$b'"; fi
	check_poweroff "x86-64-v2: poweroff ends ember with status 0" W
else
	fail "x86-64-v2: /proc/cpuinfo follows the model" "the guest never ticked"; show "$TMP/V.out" 10; show "$TMP/V.err" 5
	for n in "${BOOT2[@]:1}"; do skip "$n" "boot 2 did not get to its test script"; done
	kill -9 "${PID[V]}" 2>/dev/null
fi

vm_exit X 300
MUST="-avx2"
if "$EMBER" cpu 2>/dev/null | grep -q '^features: .* avx '; then MUST="-avx2 +avx"; fi
if [ "$VRC" = 0 ]; then
	check_flags "host,-avx2: /proc/cpuinfo follows the model" host,-avx2 "$TMP/X.out"
	check_xsave "host,-avx2: Linux takes its XSAVE layout" "$TMP/X.out"
else
	fail "host,-avx2: /proc/cpuinfo follows the model" "ember exited $VRC"; show "$TMP/X.out" 10; show "$TMP/X.err" 5
	skip "host,-avx2: Linux takes its XSAVE layout" "the guest did not finish"
fi

if grep -lEa 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP"/*.err >"$TMP/san.list" 2>/dev/null; then
	fail "ember: no sanitizer report" "in $(xargs -n1 basename <"$TMP/san.list" | tr '\n' ' ')"
	grep -hEa -A5 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP"/*.err | head -n 20 | sed 's/^/#   /'
else
	pass "ember: no sanitizer report"
fi
echo "# done after $(($(date +%s) - T0)) s"
