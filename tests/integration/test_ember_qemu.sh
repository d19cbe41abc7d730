#!/usr/bin/env bash
# tools/ember-qemu driven the way kvm-unit-tests' x86/run and
# scripts/{arch-run,runtime}.bash drive QEMU: the probes, the premature
# failure check with _NO_FILE_4Uhere_, declining options the SKIP way, and a
# real run whose status and stderr are judged as run_qemu judges them.
# (Written from their documented behaviour; no kvm-unit-tests code here.)
source "$(dirname "$0")/lib.sh"
QEMU=$ROOT/tools/ember-qemu
export EMBER
MB=$GUEST

# search_qemu_binary: --help must mention QEMU.
if "$QEMU" --help 2>/dev/null | grep -q QEMU; then pass "ember-qemu: --help says QEMU"; else fail "ember-qemu: --help says QEMU"; fi
# x86/run: -device '?' lists "pc-testdev" and "pci-testdev" with their quotes
# (x86/run then passes -device pci-testdev to every test).
"$QEMU" -device '?' >"$TMP/dev" 2>&1
if grep -qF '"pc-testdev"' "$TMP/dev" && grep -qF '"pci-testdev"' "$TMP/dev"; then
	pass "ember-qemu: -device ? lists pc-testdev and pci-testdev"; else fail "ember-qemu: -device ? lists pc-testdev and pci-testdev"; fi
# env_params: the first line of -h is parsed as "QEMU emulator version X.Y.Z".
IFS='[ .]' read -r _ _ _ major minor micro _ <<<"$("$QEMU" -h | head -1)"
expect_eq "ember-qemu: -h version line parses" "$major.$minor.$micro" "7.2.0"

base=(--no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard -device pc-testdev
      -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none -serial stdio -machine accel=kvm)
# premature_failure: a missing kernel must say "could not load kernel" and name it.
log=$("$QEMU" "${base[@]}" -kernel _NO_FILE_4Uhere_ -smp 1 2>&1)
if echo "$log" | grep _NO_FILE_4Uhere_ | grep -q "could not load kernel"; then
	pass "ember-qemu: missing kernel is a load failure"; else fail "ember-qemu: missing kernel is a load failure" "$log"; fi
# Unsupported options: any other message (the test is then SKIPped with it).
for opt in "-device pci-testdev,membar=1M" "-machine accel=tcg" "-cpu qemu64,+x2apic" "-smp 2,sockets=2" "-chardev file,id=x" "-cpu host,+nosuchfeature"; do
	# shellcheck disable=SC2086
	log=$("$QEMU" "${base[@]}" -kernel _NO_FILE_4Uhere_ -smp 1 $opt 2>&1); rc=$?
	if [ $rc -ne 0 ] && echo "$log" | grep -Eq "^ember(-qemu)?: " && ! echo "$log" | grep -q "could not load kernel"; then
		pass "ember-qemu: declines $opt"; else fail "ember-qemu: declines $opt" "rc=$rc: $log"; fi
done

require_kvm "ember-qemu: kvm-unit-tests style run passes" "ember-qemu: failing status" \
	"ember-qemu: -cpu host,-x2apic honoured" "ember-qemu: -device pci-testdev"
printf 'MBINFO_KEY=42\nNR_CPUS=2\n' >"$TMP/env"
# run_qemu: status 1 with only "warning" lines on stderr is a pass.
timeout 60 "$QEMU" "${base[@]}" -kernel "$MB/mbinfo.flat" -smp 2 -append "alpha beta" -initrd "$TMP/env" \
	</dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
if [ $rc = 1 ] && ! grep -vqi warning "$TMP/err" && grep -q "^SUMMARY: .* 0 failures" "$TMP/out" &&
	! grep -q "# SKIP" "$TMP/out"; then
	pass "ember-qemu: kvm-unit-tests style run passes"
else
	fail "ember-qemu: kvm-unit-tests style run passes" "rc=$rc"; sed 's/^/#   /' "$TMP/out" "$TMP/err" | tail -n 30
fi
# -cpu host,-x2apic reaches the guest's CPUID.
timeout 60 "$QEMU" "${base[@]}" -kernel "$MB/cpuid_msr.flat" -smp 1 -cpu host,-x2apic </dev/null >"$TMP/out" 2>&1; rc=$?
if [ $rc = 1 ] && grep -q "x2apic off" "$TMP/out" && grep -q "enabling x2APIC is refused" "$TMP/out"; then
	pass "ember-qemu: -cpu host,-x2apic honoured"; else fail "ember-qemu: -cpu host,-x2apic honoured" "rc=$rc"; tail -n 20 "$TMP/out" | sed 's/^/#   /'; fi
# -device pci-testdev: the guest kit's pci_testdev kernel finds it and runs
# its tests on both BARs, as kvm-unit-tests' pci-testdev library does.
timeout 60 "$QEMU" "${base[@]}" -kernel "$GUEST/pci_testdev.elf" -smp 1 -device pci-testdev </dev/null >"$TMP/out" 2>&1; rc=$?
if [ $rc = 1 ] && grep -q "^ok .* three I/O tests pass" "$TMP/out" && grep -q "^SUMMARY: .* 0 failures" "$TMP/out"; then
	pass "ember-qemu: -device pci-testdev"; else fail "ember-qemu: -device pci-testdev" "rc=$rc"; tail -n 20 "$TMP/out" | sed 's/^/#   /'; fi
