#!/usr/bin/env bash
# Boots Debian's cloud kernel under Ember, as an uncompressed ELF vmlinux and
# as a bzImage, with the busybox initramfs from tools/linux/build.sh, and
# checks on the serial console what this host lets the kernel get to:
#
# - early boot: the "Linux version" banner; the kernel echoes Ember's command
#   line; the BIOS-e820 map the kernel prints is Ember's map for 512M (usable
#   0-0x9fbff and 1M-512M, nothing else usable); the "Memory: NK/MK" total is
#   512 MiB less at most 4 MiB; the kernel found the 2 CPUs of Ember's MADT
#   ("smpboot: Allowing 2 CPUs", printed in setup_arch before "Memory:");
# - when /init runs (hardware virtualization, VMX or SVM): "EMBER-INIT:
#   started", cpus=2, the memory /init sees, every virtio module loaded,
#   virtio_pci bound Ember's virtio-blk (--disk) and virtio-rng (--rng), and
#   ember exiting 0 when /init powers off;
# - on a kvm_pvm host (/dev/kvm without hardware virtualization: guest kernel
#   code is emulated, ~1000x slower, and a stock kernel stops on an
#   instruction kvm_pvm cannot emulate: cmpxchg16b right after "Memory:", or
#   xrstor in the FPU setup ~90 s later when CPUID hides cmpxchg16b): that
#   ember then stops with its "KVM internal error" message.
#
# Time on kvm_pvm (measured on an idle 2-core host): the vmlinux prints its
# banner after ~45 s and "Memory:" after ~105-115 s; the bzImage first runs its in-guest decompressor (lz4, 53 MB), which
# takes ~270 s before the kernel prints anything. So by default the bzImage
# only gets a 15 s smoke run there, side by side with the vmlinux boot (ember
# loads it and the guest runs without error), and its early-boot checks are
# skipped; EMBER_LINUX_SLOW=1 waits for it (~6 min). Once "Memory:" is out
# the early checks have what they need: if ember has not stopped on its own
# 10 s later (EMBER_LINUX_GRACE), the test stops it and skips the
# internal-error check. So the test takes ~2 min on an idle host; the hard
# limit of 300 s (EMBER_LINUX_TIMEOUT) only guards against a hang, since a
# busy host slows the emulation down a lot.
# Every boot also checks "ember loads it and the guest runs". A "# ... checked:"
# line says which level was checked. Boot logs: build/linux/boot-*.log.
# test-host: also-pvm nested-ready
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

KINDS=(vmlinux bzImage)
RUNS="ember loads it and the guest runs"
EARLY_CHECKS=("kernel banner" "command line from ember" "e820 map is ember's 512M map"
	"Memory: total is 512M" "kernel sees 2 CPUs")
FULL_CHECKS=("/init ran" "/init sees 2 CPUs" "/init sees the memory" "virtio modules load"
	"virtio_pci finds Ember's virtio-blk and virtio-rng"
	"poweroff ends ember with status 0")
PVM_END="ember stops with KVM internal error"
# tests/run.sh runs this script in the nested SVM test host for the full
# boot, and on a kvm_pvm machine also directly with EMBER_TEST_PVM_ONLY=1:
# the PVM-specific checks alone, as the /init checks run in the test host.
if [ "${EMBER_TEST_PVM_ONLY:-0}" = 1 ]; then FULL_CHECKS=(); fi
all_names() {
	local k c
	echo "linux guest build"
	for k in "${KINDS[@]}"; do
		for c in "$RUNS" "${EARLY_CHECKS[@]}" "${FULL_CHECKS[@]}" "$PVM_END"; do echo "$k: $c"; done
	done
}
mapfile -t ALL < <(all_names)
require_kvm "${ALL[@]}"

# What this host allows (see above).
if [ -d /sys/module/kvm_pvm ]; then
	HOST=pvm WHY="kvm_pvm: no hardware virtualization"
elif [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; then
	HOST=hw WHY="hardware virtualization"
else
	HOST=other WHY="unknown KVM backend"
fi

# --- the guest ---------------------------------------------------------------
linux_guest_build "${ALL[@]}"
echo "# guest: $(head -n 1 "$LINUX/kernel.txt")"

if [ ! -x "$EMBER" ]; then
	for n in "${ALL[@]:1}"; do fail "$n" "no ember binary at $EMBER"; done
	exit 0
fi

# --- checks on one boot --------------------------------------------------------
MIB=$((1024 * 1024))
MEM=$((512 * MIB))
# Ember's map for 512M: everything usable but the 0x9fc00-0xfffff legacy hole.
EXPECT_USABLE="0x0000000000000000-0x000000000009fbff
0x0000000000100000-0x000000001fffffff"
EXPECT_USABLE_BYTES=$((MEM - (0x100000 - 0x9fc00)))
CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0 ember.test=1 ember.marker=abc123 panic=-1"

show() { sed 's/^/#   /' "$1" | tail -n "${2:-25}"; }

check_runs() {  # NAME LOG: the kernel got going, or ember ran it without error
	local name=$1 log=$2
	if grep -q 'Linux version [0-9]' "$log" ||
		{ [ "$end" != exit ] && ! grep -qiE 'ember: error|internal error|ERROR: AddressSanitizer' "$log"; }; then
		pass "$name"
	else
		fail "$name" "ember exited $RC before the kernel printed anything"
		show "$log" 10
	fi
}

check_e820() {  # NAME LOG
	local name=$1 log=$2 usable total=0 a b
	usable=$(sed -n 's/.*BIOS-e820: \[mem \(0x[0-9a-f]*-0x[0-9a-f]*\)\] usable.*/\1/p' "$log" | sort -u)
	if [ -z "$usable" ]; then
		fail "$name" "the kernel printed no BIOS-e820 usable lines"; show "$log" 10; return
	fi
	while IFS=- read -r a b; do total=$((total + b - a + 1)); done <<<"$usable"
	if [ "$usable" = "$EXPECT_USABLE" ] && [ "$total" -eq "$EXPECT_USABLE_BYTES" ]; then
		pass "$name"
	else
		fail "$name" "usable ranges total $total bytes, expected $EXPECT_USABLE_BYTES ($(echo "$EXPECT_USABLE" | tr '\n' ' '))"
		grep 'BIOS-e820' "$log" | sort -u | sed 's/^/#   /'
	fi
}

check_memory() {  # NAME LOG: "Memory: 219840K/523896K available (...)"
	local name=$1 log=$2 line total
	line=$(grep -m1 -oE 'Memory: [0-9]+K/[0-9]+K available' "$log") || true
	if [ -z "$line" ]; then
		fail "$name" "no 'Memory: NK/MK available' line"; show "$log" 10; return
	fi
	total=${line#*/}
	total=${total%%K*}
	if [ "$total" -le $((MEM / 1024)) ] && [ "$total" -ge $(((MEM - 4 * MIB) / 1024)) ]; then
		pass "$name"
	else
		fail "$name" "'$line': total ${total}K, expected $(((MEM - 4 * MIB) / 1024))K..$((MEM / 1024))K"
	fi
}

check_init_memory() {  # NAME LOG: "EMBER-INIT: memtotal=N kB"
	local name=$1 log=$2 kb
	kb=$(sed -n 's/.*EMBER-INIT: memtotal=\([0-9]*\) kB.*/\1/p' "$log" | head -n 1)
	if [ -n "$kb" ] && [ "$kb" -le $((MEM / 1024)) ] && [ "$kb" -ge $((MEM * 3 / 4 / 1024)) ]; then
		pass "$name"
	else
		fail "$name" "MemTotal '${kb:-none}' kB, expected 3/4 to all of $((MEM / 1024)) kB"
		grep 'EMBER-INIT' "$log" | sed 's/^/#   /'
	fi
}

check_modules() {  # NAME LOG
	local name=$1 log=$2 want got
	want=$(grep -c . "$LINUX/modules/order")
	got=$(grep -c 'EMBER-INIT: loaded ' "$log")
	if [ "$got" -eq "$want" ] && ! grep -q 'EMBER-INIT: failed ' "$log"; then
		pass "$name"
	else
		fail "$name" "$got of $want modules loaded"
		grep -E 'EMBER-INIT: (loaded|failed)' "$log" | sed 's/^/#   /'
	fi
}

# check_virtio NAME LOG: /init lists Ember's PCI functions (1af4:1042 blk,
# 1af4:1044 rng) and virtio_pci bound them (virtio device IDs 2 and 4).
check_virtio() {
	local name=$1 log=$2
	if grep -q 'EMBER-INIT: pci .* 0x1af4:0x1042' "$log" && grep -q 'EMBER-INIT: pci .* 0x1af4:0x1044' "$log" &&
	   grep -q 'EMBER-INIT: virtio virtio[0-9]* vendor=0x1af4 device=0x0002' "$log" &&
	   grep -q 'EMBER-INIT: virtio virtio[0-9]* vendor=0x1af4 device=0x0004' "$log"; then
		pass "$name"
	else
		fail "$name" "/init does not list both devices on PCI and on the virtio bus"
		grep -E 'EMBER-INIT: (pci|virtio) ' "$log" | sed 's/^/#   /'
	fi
}

# launch KIND KERNEL LIMIT [GRACE]: boot it (put it in the background with &
# to run two at once): output in $TMP/boot-KIND.raw; exit status, seconds and
# how it ended in .rc, .secs and .end. Ember is killed after LIMIT seconds
# ("limit"), or GRACE seconds after the kernel printed "Memory:" ("grace":
# the early checks have all they need by then).
launch() {
	local k=$1 kernel=$2 limit=$3 grace=${4:-} raw=$TMP/boot-$1.raw start now mem='' pid end=exit
	start=$(date +%s)
	RC=0
	truncate -s 16M "$TMP/disk-$k.img"
	"$EMBER" run --kernel "$kernel" --initrd "$LINUX/initramfs.cpio.gz" \
		--memory 512M --cpus 2 --cmdline "$CMDLINE" \
		--disk "$TMP/disk-$k.img,serial=EMBER-LINUX" --rng </dev/null >"$raw" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		now=$(date +%s)
		if [ -n "$grace" ] && [ -z "$mem" ] && grep -qa 'Memory: [0-9]*K/' "$raw"; then mem=$now; fi
		if [ $((now - start)) -ge "$limit" ]; then end=limit; fi
		if [ -n "$mem" ] && [ $((now - mem)) -ge "$grace" ]; then end=grace; fi
		if [ "$end" != exit ]; then
			kill -TERM "$pid" 2>/dev/null
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.5
			done
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 1
	done
	wait "$pid" || RC=$?
	echo "$RC" >"$TMP/boot-$k.rc"
	echo "$end" >"$TMP/boot-$k.end"
	echo $(($(date +%s) - start)) >"$TMP/boot-$k.secs"
}

# check KIND TIMEOUT EXPECT: the checks on a finished boot; EXPECT is what
# this host should get to: full (/init), early (up to "Memory:") or smoke.
check() {
	local k=$1 t=$2 expect=$3 log=$TMP/boot-$1.out secs end c
	RC=$(cat "$TMP/boot-$k.rc")
	secs=$(cat "$TMP/boot-$k.secs")
	end=$(cat "$TMP/boot-$k.end")
	tr -d '\r' <"$TMP/boot-$k.raw" >"$log"
	cp "$log" "$LINUX/boot-$k.log" 2>/dev/null || true
	case $end in
	exit) echo "# $k: ember exited $RC after ${secs}s; log in build/linux/boot-$k.log" ;;
	limit) echo "# $k: ember stopped by the test at its ${t}s limit; log in build/linux/boot-$k.log" ;;
	grace) echo "# $k: ember stopped by the test ${PVM_GRACE}s after 'Memory:' (${secs}s); log in build/linux/boot-$k.log" ;;
	esac

	check_runs "$k: $RUNS" "$log"
	# Whatever the host, /init running means the full checks apply.
	if grep -q 'EMBER-INIT: started' "$log"; then expect=full; fi
	# A smoke run that got through early boot after all: check it.
	if [ "$expect" = smoke ] && [ "$end" != limit ] && grep -q 'Linux version [0-9]' "$log"; then
		expect=early
	fi

	if [ "$expect" = smoke ]; then
		for c in "${EARLY_CHECKS[@]}" "${FULL_CHECKS[@]}" "$PVM_END"; do
			skip "$k: $c" "$WHY: a ${t}s smoke run only (the in-guest decompressor is emulated: ~270 s; EMBER_LINUX_SLOW=1 waits)"
		done
		echo "# $k checked: ember loads it and runs the guest for ${t}s ($WHY)"
		return
	fi

	expect_grep "$k: kernel banner" 'Linux version [0-9]' "$log"
	expect_grep "$k: command line from ember" 'Command line: .*ember\.marker=abc123' "$log"
	check_e820 "$k: e820 map is ember's 512M map" "$log"
	check_memory "$k: Memory: total is 512M" "$log"
	expect_grep "$k: kernel sees 2 CPUs" 'smpboot: Allowing 2 CPUs' "$log"

	if [ "$expect" = full ]; then
		expect_grep "$k: /init ran" 'EMBER-INIT: started' "$log"
		expect_grep "$k: /init sees 2 CPUs" 'EMBER-INIT: cpus=2$' "$log"
		check_init_memory "$k: /init sees the memory" "$log"
		check_modules "$k: virtio modules load" "$log"
		check_virtio "$k: virtio_pci finds Ember's virtio-blk and virtio-rng" "$log"
		expect_eq "$k: poweroff ends ember with status 0" "$RC" 0
		skip "$k: $PVM_END" "/init ran"
		echo "# $k checked: full boot to /init, virtio_pci bound Ember's virtio-blk and virtio-rng (host: $WHY)"
	else
		for c in "${FULL_CHECKS[@]}"; do skip "$k: $c" "$WHY"; done
		if [ "$end" = exit ] && [ "$RC" -ne 0 ] && grep -qi 'internal error' "$log"; then
			pass "$k: $PVM_END"
			grep -i -m1 'internal error' "$log" | sed 's/^/# ember said: /'
		elif [ "$end" = grace ]; then
			# The kernel got further than "Memory:" without a failure: fine,
			# just not something this test waits for.
			skip "$k: $PVM_END" "the guest was still running ${PVM_GRACE}s after 'Memory:'"
			echo "# $k: last console line: $(grep -v '^ember' "$log" | tail -n 1)"
		else
			fail "$k: $PVM_END" "ember $([ "$end" = limit ] && echo "still running after ${t}s" || echo "exited $RC"), expected it to stop on an emulation failure with a 'KVM internal error' message"
			show "$log" 10
		fi
		echo "# $k checked: early boot only, not the virtio_pci probe (the kernel stops before PCI init; $WHY)"
	fi
}

if [ "$HOST" = pvm ]; then
	PVM_GRACE=${EMBER_LINUX_GRACE:-10}
	# The bzImage's smoke run shares the vmlinux boot's time (2 cores).
	if [ "${EMBER_LINUX_SLOW:-0}" = 1 ]; then BZ_T=480 BZ_EXPECT=early; else BZ_T=15 BZ_EXPECT=smoke; fi
	launch bzImage "$LINUX/bzImage" "$BZ_T" "$PVM_GRACE" &
	bz_pid=$!
	launch vmlinux "$LINUX/vmlinux" "${EMBER_LINUX_TIMEOUT:-300}" "$PVM_GRACE"
	wait "$bz_pid"
	check vmlinux "${EMBER_LINUX_TIMEOUT:-300}" early
	check bzImage "$BZ_T" "$BZ_EXPECT"
else
	for k in "${KINDS[@]}"; do
		launch "$k" "$LINUX/$k" "${EMBER_LINUX_TIMEOUT:-120}"
		check "$k" "${EMBER_LINUX_TIMEOUT:-120}" full
	done
fi
