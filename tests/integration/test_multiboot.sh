#!/usr/bin/env bash
# Multiboot boot and `ember test`: Ember's own test kernels all pass; kernels
# that fail, hang, triple-fault or write a bad exit code are reported as
# such; malformed multiboot files are refused with one line and exit 2.
source "$(dirname "$0")/lib.sh"
MB=$GUEST

# Tiny multiboot kernels assembled here: each does one thing and stops.
mk() {  # NAME ASM-BODY [HEADER-FLAGS [CHECKSUM]]
	local flags=${3:-0} sum
	sum=${4:-"-(0x1BADB002 + $flags)"}
	printf '\t.code32\n\t.align 4\n\t.long 0x1BADB002, %s, %s\n\t.globl _start\n_start:\n%s\n' \
		"$flags" "$sum" "$2" >"$TMP/$1.S"
	gcc -m32 -c "$TMP/$1.S" -o "$TMP/$1.o" &&
		ld -m elf_i386 -N -Ttext="${LOAD:-0x100000}" -e _start "$TMP/$1.o" -o "$TMP/$1.elf" 2>/dev/null
}
exit_with() { printf '\tmov $%s, %%eax\n\tmov $0xf4, %%dx\n\toutl %%eax, %%dx\n' "$1"; }
mk pass "$(exit_with 0)"
mk fail "$(exit_with 1)"
mk badcode "$(exit_with 0x50)"
mk hang "$(printf '\tcli\n1:\thlt\n\tjmp 1b')"
mk triple "$(printf '\tlidt 2f\n\tmov $0x1234, %%ax\n\tmov %%ax, %%ds\n2:\t.word 0\n\t.long 0')"
mk badsum "$(exit_with 0)" 0 0x12345
mk video "$(exit_with 0)" 4
LOAD=0xf0000 mk overbios "$(exit_with 0)"
LOAD=0x7fff000 mk pastram "$(exit_with 0)"

# Refusals: one line, exit 2, before any guest runs and before /dev/kvm is
# opened: the same on a host without KVM (WRAP=hide_kvm).
refuse() {  # NAME PATTERN ARGS...
	local name="$1${WRAP:+ (no /dev/kvm)}" pat=$2; shift 2
	run_vm "$TMP/out" 10 "$@"
	local lines
	lines=$(grep -vc 'warning' "$TMP/out")
	if [ "$RC" = 2 ] && [ "$lines" = 1 ] && grep -Eq -- "$pat" "$TMP/out"; then pass "$name"; else
		fail "$name" "rc=$RC, $lines line(s): $(head -c 300 "$TMP/out")"; fi
}
head -c $((8 << 20)) /dev/zero >"$TMP/bigmod"
printf '\177ELF\1\1\1\0' >"$TMP/elf32-junk"; head -c 200 /dev/zero >>"$TMP/elf32-junk"
refusals() {
	refuse "multiboot: bad checksum refused" "bad checksum" --kernel "$TMP/badsum.elf"
	refuse "multiboot: video mode requirement refused" "video mode" --kernel "$TMP/video.elf"
	refuse "multiboot: segment over Ember's tables refused" "overlaps Ember's boot tables" --kernel "$TMP/overbios.elf"
	refuse "multiboot: segment outside RAM refused" "outside guest RAM" --kernel "$TMP/pastram.elf" --memory 64M
	refuse "multiboot: module that does not fit refused" "module .* does not fit" --kernel "$TMP/pass.elf" --memory 8M --initrd "$TMP/bigmod"
	refuse "ELF32 without multiboot refused" "needs multiboot|not 64-bit" --kernel "$TMP/elf32-junk"
}

# `ember test` reports such kernels as refused (its `ember run` child exits
# 2 with the reason), not as an Ember failure.
test_refused() {
	local name="ember test: bad kernels refused${WRAP:+ (no /dev/kvm)}" rc=0
	${WRAP:-} timeout 60 "$EMBER" test -j2 --timeout 10 "$TMP"/{badsum,video,overbios}.elf "$TMP/elf32-junk" \
		>"$TMP/refused" 2>&1 || rc=$?
	local ok=1 k
	for k in badsum.elf video.elf overbios.elf elf32-junk; do
		grep -q "^FAIL $TMP/$k: ember refused the kernel or options (exit 2)" "$TMP/refused" || ok=0
	done
	grep -q "^#   ember: error: kernel $TMP/badsum.elf: .*bad checksum" "$TMP/refused" || ok=0
	grep -q "^0 passed, 4 failed, 0 skipped" "$TMP/refused" || ok=0
	[ $rc = 1 ] || ok=0
	if [ $ok = 1 ]; then pass "$name"; else fail "$name" "rc=$rc"; sed 's/^/#   /' "$TMP/refused"; fi
}

refusals
test_refused
if hide_kvm_works; then
	WRAP=hide_kvm refusals
	WRAP=hide_kvm test_refused
else
	skip "multiboot refusals without /dev/kvm" "$HIDE_KVM_WHY"
fi

require_kvm "multiboot: debug-exit 0 exits 1" "ember test: own kernels" "ember test: verdicts" "ember test: TAP" \
	"kit smp.flat under QEMU -M microvm" "kit cpuid_msr.flat under QEMU -M microvm"

run_vm "$TMP/out" 20 --kernel "$TMP/pass.elf" --debug-exit
expect_eq "multiboot: debug-exit 0 exits 1" "$RC" 1

# Every own test kernel passes.
if ls "$MB"/*.flat >/dev/null 2>&1; then
	timeout 300 "$EMBER" test -j2 --timeout 120 "$MB"/*.flat >"$TMP/own" 2>&1; rc=$?
	n=$(ls "$MB"/*.flat | wc -l)
	if [ $rc = 0 ] && grep -q "^$n passed, 0 failed" "$TMP/own"; then pass "ember test: own kernels ($n)"; else
		fail "ember test: own kernels" "rc=$rc"; sed 's/^/#   /' "$TMP/own" | tail -n 40; fi
else
	fail "ember test: own kernels" "no kernels in $MB (make guest)"
fi

# Verdicts for kernels that fail, hang, crash or write a bad code.
timeout 120 "$EMBER" test -j2 --timeout 3 "$TMP"/{pass,fail,badcode,hang,triple}.elf "$TMP/missing.elf" >"$TMP/v" 2>&1; rc=$?
ok=1
grep -q "^PASS $TMP/pass.elf" "$TMP/v" || ok=0
grep -q "^FAIL $TMP/fail.elf: the test reported failure" "$TMP/v" || ok=0
grep -q "^FAIL $TMP/badcode.elf: bad debug-exit code 80" "$TMP/v" || ok=0
grep -q "^FAIL $TMP/hang.elf: timeout" "$TMP/v" || ok=0
grep -q "^FAIL $TMP/triple.elf: the guest crashed" "$TMP/v" || ok=0
grep -q "triple fault" "$TMP/v" || ok=0
grep -q "^FAIL $TMP/missing.elf: ember refused" "$TMP/v" || ok=0
grep -q "^1 passed, 5 failed, 0 skipped" "$TMP/v" || ok=0
[ $rc = 1 ] || ok=0
if [ $ok = 1 ]; then pass "ember test: verdicts"; else fail "ember test: verdicts" "rc=$rc"; sed 's/^/#   /' "$TMP/v"; fi

"$EMBER" test --tap "$TMP/pass.elf" "$TMP/fail.elf" >"$TMP/tap" 2>&1; rc=$?
if [ $rc = 1 ] && grep -q '^1\.\.2$' "$TMP/tap" && grep -q '^ok [12] - ' "$TMP/tap" && grep -q '^not ok [12] - ' "$TMP/tap"; then
	pass "ember test: TAP"; else fail "ember test: TAP" "rc=$rc"; sed 's/^/#   /' "$TMP/tap"; fi

# The kit's .flat build boots under another multiboot loader too: QEMU's
# microvm (no PM timer, XSDT only, only an ISA bus), the APs by INIT/SIPI
# from the kit. The same files the benchmark runs under QEMU.
QEMU_BIN=$(command -v qemu-system-x86_64 || true)
for k in smp cpuid_msr; do
	name="kit $k.flat under QEMU -M microvm"
	if [ -z "$QEMU_BIN" ]; then skip "$name" "no qemu-system-x86_64"; continue; fi
	timeout 120 "$QEMU_BIN" -M microvm,pit=on,pic=on,rtc=on -accel kvm -cpu host,-arch-capabilities \
		-nodefaults -no-user-config -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none \
		-serial stdio -m 64 -smp 2 -kernel "$GUEST/$k.flat" </dev/null >"$TMP/q" 2>&1; rc=$?
	if [ $rc = 1 ] && grep -q "^SUMMARY: .* 0 failures" "$TMP/q"; then pass "$name"; else
		fail "$name" "rc=$rc"; tail -n 20 "$TMP/q" | sed 's/^/#   /'; fi
done
