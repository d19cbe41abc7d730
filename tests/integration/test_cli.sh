#!/usr/bin/env bash
# Bad user input: a one-line error naming the problem, exit code 2, before
# any guest runs. Plus --help and --version.
source "$(dirname "$0")/lib.sh"

KERNEL=$GUEST/hello.elf

# bad_input NAME PATTERN ARGS...: expect exit 2 and exactly one error line
# matching PATTERN.
bad_input() {
	local name=$1 pattern=$2; shift 2
	local rc=0
	"$EMBER" run "$@" </dev/null >"$TMP/out" 2>"$TMP/err" || rc=$?
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

bad_input "missing kernel file" "/nonexistent/vmlinuz: No such file" --kernel /nonexistent/vmlinuz
bad_input "no --kernel" "no kernel" --memory 128M
bad_input "kernel is a directory" "not a regular file" --kernel /tmp
printf 'this is not a kernel at all, just some text that is long enough\n%.0s' {1..100} >"$TMP/junk"
bad_input "kernel neither bzImage nor ELF64" "not a bzImage or ELF64" --kernel "$TMP/junk"
: >"$TMP/empty"
bad_input "empty kernel file" "empty" --kernel "$TMP/empty"
bad_input "missing initrd" "initrd /nonexistent/initrd: No such file" --kernel "$TMP/junk" --initrd /nonexistent/initrd
bad_input "memory 0" "--memory 0" --kernel "$TMP/junk" --memory 0
bad_input "memory not a size" "not a size" --kernel "$TMP/junk" --memory lots
bad_input "memory above the host" "more than this host has" --kernel "$TMP/junk" --memory 64T
bad_input "cpus 0" "--cpus 0" --kernel "$TMP/junk" --cpus 0
bad_input "unknown option" "unknown option --frobnicate" --kernel "$TMP/junk" --frobnicate
bad_input "option without value" "--memory needs a value" --kernel "$TMP/junk" --memory

rc=0; "$EMBER" run --help >"$TMP/help" 2>&1 || rc=$?
if [ $rc -eq 0 ] && grep -q -- "--kernel PATH" "$TMP/help"; then pass "run --help"; else fail "run --help" "rc=$rc"; fi
rc=0; "$EMBER" --version >"$TMP/ver" 2>&1 || rc=$?
if [ $rc -eq 0 ] && grep -Eq '^ember [0-9]+\.[0-9]+' "$TMP/ver"; then pass "--version"; else fail "--version" "rc=$rc"; fi
rc=0; "$EMBER" frobnicate >"$TMP/out" 2>&1 || rc=$?
expect_eq "unknown command exits 2" "$rc" 2

# The checks below need KVM (the vCPU limit) or a bootable kernel.
if ! have_kvm; then
	skip "cpus above KVM's limit" "no /dev/kvm on this host"
	skip "initrd that does not fit" "no /dev/kvm on this host"
	skip "kernel that does not fit" "no /dev/kvm on this host"
	exit 0
fi
bad_input "cpus above KVM's limit" "KVM on this host allows at most" --kernel "$KERNEL" --cpus 4096
head -c $((16 << 20)) /dev/zero >"$TMP/big-initrd"
bad_input "initrd that does not fit" "initrd .* does not fit" --kernel "$KERNEL" --memory 16M --initrd "$TMP/big-initrd"
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
bad_input "kernel that does not fit" "give more --memory" --kernel "$TMP/far.elf" --memory 32M
