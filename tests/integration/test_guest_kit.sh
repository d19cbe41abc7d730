#!/usr/bin/env bash
# Guest kit: boots each kernel of tests/guest (built to $GUEST by `make guest`)
# under Ember and checks its TAP lines and exit status. Test kernels end
# through isa-debug-exit (--debug-exit): status 1 = all ok, 3 = a failure.
# hello powers off through ACPI (status 0).
source "$(dirname "$0")/lib.sh"

CHECKS=(
	"hello exits 0 via ACPI soft-off" "hello greets"
	"smp --cpus 1" "smp --cpus 2" "smp --cpus 4"
	"smp fails on a cpus= mismatch"
	"exception" "exception RIP of ud2_here matches nm"
	"user"
	"mem 128M" "mem 3584M (RAM above 4 GiB)"
)
require_kvm "${CHECKS[@]}"

# show OUT: the end of a run's output, as TAP comments.
show() { sed 's/^/#   /' "$1" | tail -n 25; }

# kit_run NAME OUT EXPECTED_RC ARGS...: run a guest-kit kernel; passes when
# Ember exits EXPECTED_RC, no line is "not ok" and (for test kernels) the
# SUMMARY line is there.
kit_run() {
	local name=$1 out=$2 want=$3; shift 3
	run_vm "$out" 60 "$@"
	if [ "$RC" != "$want" ]; then
		fail "$name" "exit status $RC, expected $want"; show "$out"
	elif grep -q '^not ok' "$out"; then
		fail "$name" "a guest check failed"; grep '^not ok' "$out" | sed 's/^/#   /'
	elif [ "$want" = 1 ] && ! grep -Eq '^SUMMARY: [0-9]+ tests, 0 failures' "$out"; then
		fail "$name" "no clean SUMMARY line"; show "$out"
	else
		pass "$name"
	fi
}

for k in hello smp exception user mem; do
	if [ ! -f "$GUEST/$k.elf" ]; then
		for n in "${CHECKS[@]}"; do fail "$n" "$GUEST/$k.elf not built (make guest)"; done
		exit 0
	fi
done

# hello: the README's quick start.
run_vm "$TMP/hello.out" 60 --kernel "$GUEST/hello.elf" --memory 128M --cpus 2
if [ "$RC" = 0 ]; then pass "hello exits 0 via ACPI soft-off"; else
	fail "hello exits 0 via ACPI soft-off" "exit status $RC"; show "$TMP/hello.out"; fi
if grep -q '^Hello from the Ember guest kit on 2 vCPUs, 128 MiB RAM' "$TMP/hello.out" &&
   grep -q '^cpu 1 up' "$TMP/hello.out"; then pass "hello greets"; else
	fail "hello greets" "no Hello / cpu 1 up line"; show "$TMP/hello.out"; fi

# smp: every vCPU checks in; the count must match the MADT and cpus=N.
for c in 1 2 4; do
	kit_run "smp --cpus $c" "$TMP/smp$c.out" 1 --kernel "$GUEST/smp.elf" --cpus "$c" \
		--memory 128M --debug-exit --cmdline "cpus=$c"
done
# ... and the harness can fail: 2 vCPUs but the command line expects 3.
run_vm "$TMP/smpbad.out" 60 --kernel "$GUEST/smp.elf" --cpus 2 --memory 128M --debug-exit --cmdline "cpus=3"
if [ "$RC" = 3 ] && grep -q '^not ok .*cmdline cpus=3' "$TMP/smpbad.out"; then
	pass "smp fails on a cpus= mismatch"
else
	fail "smp fails on a cpus= mismatch" "exit status $RC (expected 3) or no failing check"; show "$TMP/smpbad.out"
fi

# exception: #UD/#DE/#GP/#PF caught; the printed RIP of the ud2 is ud2_here.
kit_run "exception" "$TMP/exc.out" 1 --kernel "$GUEST/exception.elf" --cpus 1 --memory 128M --debug-exit
want=$(nm "$GUEST/exception.elf" | awk '$3 == "ud2_here" { print $1 }')
got=$(sed -n 's/^EXCEPTION vector=6 .*rip=\(0x[0-9a-f]*\) .*/\1/p' "$TMP/exc.out" | head -n 1)
if [ -n "$want" ] && [ -n "$got" ] && [ $((16#$want)) -eq $((got)) ]; then
	pass "exception RIP of ud2_here matches nm"
else
	fail "exception RIP of ud2_here matches nm" "printed '${got:-none}', nm says '${want:-none}'"
fi

# user: CPL3 work at native speed, privileged instructions fault.
kit_run "user" "$TMP/user.out" 1 --kernel "$GUEST/user.elf" --cpus 1 --memory 128M --debug-exit

# mem: e820 adds up; 3584M puts RAM on both sides of the 3-4 GiB hole.
kit_run "mem 128M" "$TMP/mem128.out" 1 --kernel "$GUEST/mem.elf" --cpus 1 --memory 128M \
	--debug-exit --cmdline "mem=128M"
kit_run "mem 3584M (RAM above 4 GiB)" "$TMP/mem3584.out" 1 --kernel "$GUEST/mem.elf" --cpus 1 \
	--memory 3584M --debug-exit --cmdline "mem=3584M ram=$((3584 * 1024 * 1024 - 0x60400))"
