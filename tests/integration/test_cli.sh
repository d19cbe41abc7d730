#!/usr/bin/env bash
# Bad user input: a one-line error naming the problem, exit code 2, before
# any guest runs, and before /dev/kvm is opened: the same on a host without
# KVM (checked with /dev/kvm hidden in a mount namespace). Plus --help and
# --version.
source "$(dirname "$0")/lib.sh"

KERNEL=$GUEST/hello.elf

# bad_input NAME PATTERN ARGS...: expect exit 2 and exactly one error line
# matching PATTERN. With WRAP=hide_kvm as on a host without /dev/kvm.
bad_input() {
	local name="$1${WRAP:+ (no /dev/kvm)}" pattern=$2; shift 2
	local rc=0
	${WRAP:-} "$EMBER" run "$@" </dev/null >"$TMP/out" 2>"$TMP/err" || rc=$?
	local errors
	errors=$(grep -c '^ember: error:' "$TMP/err")
	if [ "$rc" -ne 2 ]; then
		fail "$name" "exit code $rc, expected 2"; sed 's/^/#   /' "$TMP/err"
	elif [ "$errors" -ne 1 ]; then
		fail "$name" "expected one error line, got $errors"; sed 's/^/#   /' "$TMP/err"
	elif ! grep '^ember: error:' "$TMP/err" | grep -Eq -- "$pattern"; then
		fail "$name" "error does not match '$pattern'"; sed 's/^/#   /' "$TMP/err"
	elif [ -s "$TMP/out" ]; then
		fail "$name" "the guest printed something"
	else
		pass "$name"
	fi
}

printf 'this is not a kernel at all, just some text that is long enough\n%.0s' {1..100} >"$TMP/junk"
: >"$TMP/empty"
head -c $((16 << 20)) /dev/zero >"$TMP/big-initrd"
# An ELF whose segment lies beyond a small RAM.
python3 - "$TMP/far.elf" <<'PY'
import struct, sys
# ELF64 header + one PT_LOAD at 64 MiB physical.
ph_off = 64
eh = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9)
eh += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, 0x4000000, ph_off, 0, 0, 64, 56, 1, 0, 0, 0)
ph = struct.pack('<IIQQQQQQ', 1, 5, 0x1000, 0x4000000, 0x4000000, 16, 16, 0x1000)
data = eh + ph
data += bytes(0x1000 - len(data)) + b'\xf4' * 16
open(sys.argv[1], 'wb').write(data)
PY

# Every refusal that needs nothing of KVM.
bad_inputs() {
	bad_input "missing kernel file" "/nonexistent/vmlinuz: No such file" --kernel /nonexistent/vmlinuz
	bad_input "no --kernel" "no kernel" --memory 128M
	bad_input "kernel is a directory" "not a regular file" --kernel /tmp
	bad_input "kernel neither bzImage nor ELF64" "not a bzImage or ELF64" --kernel "$TMP/junk"
	bad_input "empty kernel file" "empty" --kernel "$TMP/empty"
	bad_input "missing initrd" "initrd /nonexistent/initrd: No such file" --kernel "$TMP/junk" --initrd /nonexistent/initrd
	bad_input "memory 0" "--memory 0" --kernel "$TMP/junk" --memory 0
	bad_input "memory not a size" "not a size" --kernel "$TMP/junk" --memory lots
	bad_input "memory above the host" "more than this host has" --kernel "$TMP/junk" --memory 64T
	bad_input "cpus 0" "--cpus 0" --kernel "$TMP/junk" --cpus 0
	bad_input "unknown option" "unknown option --frobnicate" --kernel "$TMP/junk" --frobnicate
	bad_input "option without value" "--memory needs a value" --kernel "$TMP/junk" --memory
	bad_input "initrd that does not fit" "initrd .* does not fit" --kernel "$KERNEL" --memory 16M --initrd "$TMP/big-initrd"
	bad_input "kernel that does not fit" "give more --memory" --kernel "$TMP/far.elf" --memory 32M
	bad_input "command line too long for the kernel" "--cmdline is 70000 bytes" --kernel "$KERNEL" \
		--cmdline "$(head -c 70000 /dev/zero | tr '\0' x)"
}
bad_inputs
# The same where /dev/kvm is missing: each still one line and exit 2
# (not 6, "/dev/kvm: No such file or directory").
if hide_kvm_works; then
	WRAP=hide_kvm bad_inputs
else
	skip "bad input without /dev/kvm" "$HIDE_KVM_WHY"
fi

rc=0; "$EMBER" run --help >"$TMP/help" 2>&1 || rc=$?
if [ $rc -eq 0 ] && grep -q -- "--kernel PATH" "$TMP/help"; then pass "run --help"; else fail "run --help" "rc=$rc"; fi
# The help says the default --seccomp mode the code has (kill).
if grep -Eq -- "--seccomp .*kill \(default\)" "$TMP/help" && ! grep -q "log (default)" "$TMP/help"; then
	pass "run --help: --seccomp default is kill"; else
	fail "run --help: --seccomp default is kill"; grep -A2 -- --seccomp "$TMP/help" | sed 's/^/#   /'; fi
rc=0; "$EMBER" --version >"$TMP/ver" 2>&1 || rc=$?
if [ $rc -eq 0 ] && grep -Eq '^ember [0-9]+\.[0-9]+' "$TMP/ver"; then pass "--version"; else fail "--version" "rc=$rc"; fi
rc=0; "$EMBER" frobnicate >"$TMP/out" 2>&1 || rc=$?
expect_eq "unknown command exits 2" "$rc" 2

# KVM's own vCPU limit is known only to KVM.
if ! have_kvm; then
	skip "cpus above KVM's limit" "no /dev/kvm on this host"
	exit 0
fi
bad_input "cpus above KVM's limit" "KVM on this host allows at most" --kernel "$KERNEL" --cpus 4096
