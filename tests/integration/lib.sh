# Shared helpers for integration tests. Each test prints TAP-style lines:
#   ok - NAME            a check passed
#   not ok - NAME: WHY   a check failed
#   ok - NAME # SKIP WHY a check could not run here (counted as skipped)
# tests/run.sh counts them. Source this file; do not run it.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EMBER=${EMBER:-$ROOT/build/asan/ember}
GUEST=${GUEST:-$ROOT/build/guest}
TMP=$(mktemp -d /tmp/ember-test.XXXXXX)
# In the nested test host (tools/testhost: its kernel command line names
# testhost.work) guests run under QEMU's TCG, many times slower than on
# hardware, and there only correctness counts: checks that give a guest or
# the VMM a time allow TIME_SCALE times as much there (EMBER_TIME_SCALE
# overrides). Timing targets are measured on real KVM (bench/).
if grep -qs 'testhost\.work=' /proc/cmdline; then TIME_SCALE=${EMBER_TIME_SCALE:-4}; else TIME_SCALE=${EMBER_TIME_SCALE:-1}; fi
# KEEP_TMP=1 keeps the outputs for a look after a failure.
trap '[ -n "${KEEP_TMP:-}" ] && echo "# outputs kept in $TMP" || rm -rf "$TMP"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pass() { echo "ok - $1"; }
fail() { echo "not ok - $1: ${2:-failed}"; }
skip() { echo "ok - $1 # SKIP ${2:-}"; }

have_kvm() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# require_kvm NAME...: when /dev/kvm is missing, skip every named check and
# exit the test script.
require_kvm() {
	if ! have_kvm; then
		for n in "$@"; do skip "$n" "no /dev/kvm on this host"; done
		exit 0
	fi
}

# hide_kvm CMD...: run CMD as on a host without /dev/kvm: in a private
# mount namespace whose /dev is an empty tmpfs holding only null (open of
# /dev/kvm fails with ENOENT). Nothing outside the namespace changes. As
# root a mount namespace; otherwise a user namespace as well (unshare -r).
# Exits 125 when the namespace cannot be made (hide_kvm_works says why).
hide_kvm() {
	local own=()
	[ "$(id -u)" = 0 ] || own=(-r)
	: >"$TMP/.null"
	unshare "${own[@]}" -m --propagation private sh -c '
		mount --bind /dev/null "$1" && mount -t tmpfs -o mode=755 none /dev &&
			: >/dev/null && mount --bind "$1" /dev/null || exit 125
		shift; exec "$@"' hide_kvm "$TMP/.null" "$@"
}

# hide_kvm_works: whether hide_kvm can run here; when not, HIDE_KVM_WHY
# says why.
hide_kvm_works() {
	HIDE_KVM_WHY=
	if ! command -v unshare >/dev/null; then
		HIDE_KVM_WHY="no unshare(1) to make a mount namespace"; return 1
	fi
	local out rc=0
	out=$(hide_kvm sh -c '[ ! -e /dev/kvm ] && [ -c /dev/null ] && echo hidden' 2>&1) || rc=$?
	[ "$out" = hidden ] && return 0
	HIDE_KVM_WHY="cannot hide /dev/kvm in a mount namespace here (unshare rc=$rc: $(echo "$out" | head -n 1))"
	return 1
}

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', expected '$3'"; fi
}

# expect_grep NAME PATTERN FILE: the file has a line matching the ERE.
expect_grep() {
	if grep -Eq -- "$2" "$3"; then pass "$1"; else
		fail "$1" "no line matching '$2' in output"; sed 's/^/#   /' "$3" | tail -n 20
	fi
}

# expect_no_grep NAME PATTERN FILE
expect_no_grep() {
	if grep -Eq -- "$2" "$3"; then
		fail "$1" "unexpected line matching '$2'"; grep -E -- "$2" "$3" | sed 's/^/#   /' | head -n 5
	else pass "$1"; fi
}

# run_vm OUT TIMEOUT ARGS...: run `ember run ARGS` with a timeout, stdout and
# stderr to OUT; sets RC to the exit code (124 on timeout). With
# WRAP=hide_kvm as on a host without /dev/kvm.
run_vm() {
	local out=$1 t=$2; shift 2
	RC=0
	${WRAP:-} timeout -k 5 "$t" "$EMBER" run "$@" </dev/null >"$out" 2>&1 || RC=$?
}

# wait_rc PID: wait for a background VM; WRC = its exit status (124 after
# 120 s, when it is killed).
wait_rc() {
	local i
	for i in $(seq 1200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$1" 2>/dev/null && kill -9 "$1"
	WRC=0; wait "$1" || WRC=$?
	[ "$i" = 1200 ] && WRC=124
	return 0
}

# linux_guest_build CHECK...: tools/linux/build.sh makes (or finds cached)
# the stock Debian kernel and initramfs in LINUX (build/linux). CHECK 1 is
# the build's own check and passes; when there is no kernel every CHECK is
# skipped (archive unreachable) or the build fails and the rest skip, and
# the script exits.
linux_guest_build() {
	LINUX=$ROOT/build/linux
	local brc=0 n
	bash "$ROOT/tools/linux/build.sh" "$LINUX" >"$TMP/build.out" 2>&1 || brc=$?
	if [ "$brc" -eq 3 ]; then
		for n in "$@"; do skip "$n" "Debian package archive unreachable and no cached kernel"; done
		exit 0
	elif [ "$brc" -ne 0 ]; then
		fail "$1" "tools/linux/build.sh exited $brc"
		sed 's/^/#   /' "$TMP/build.out" | tail -n 20
		shift
		for n in "$@"; do skip "$n" "no guest kernel"; done
		exit 0
	fi
	pass "$1"
}

# linux_initrd_with SCRIPT OUT: OUT is tools/linux/build.sh's initramfs
# followed by a second cpio archive holding SCRIPT as /ember-test.sh, which
# the initramfs's /init runs after loading the virtio modules (the kernel
# unpacks every archive of an initrd, one after the other).
linux_initrd_with() {
	local script=$1 out=$2 d
	d=$(mktemp -d "$TMP/overlay.XXXXXX")
	install -m 755 "$script" "$d/ember-test.sh"
	local size
	size=$(stat -c %s "$ROOT/build/linux/initramfs.cpio.gz")
	{
		cat "$ROOT/build/linux/initramfs.cpio.gz"
		head -c $(((4 - size % 4) % 4)) /dev/zero   # the kernel skips zeros between archives
		(cd "$d" && echo ember-test.sh | cpio -o -H newc -R 0:0 --quiet | gzip -n)
	} >"$out"
	rm -rf "$d"
}
