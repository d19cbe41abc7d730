#!/usr/bin/env bash
# ACPI S3 (suspend to RAM) as kvm-unit-tests' s3 does it (guest kit s3.elf):
# the RTC alarm wakes the VM, the BSP resumes in real mode at the FACS
# waking vector and reports that it stopped at once when it asked to sleep.
# With no wake event enabled it sleeps for good (Ember says so), and the
# control socket cannot resume it behind the guest's back.
source "$(dirname "$0")/lib.sh"
KERNEL=$GUEST/s3.elf
require_kvm "s3: RTC alarm wakes the guest at its waking vector" "s3: no wake event, no wake" \
	"s3: ctl resume refused while asleep"

# Under --seccomp kill: the wake's vCPU and chipset ioctls on the loop
# thread are in main's filter.
run_vm "$TMP/out" 60 --kernel "$KERNEL" --test-devices --memory 64M --cpus 2 --log-level info --seccomp kill
if [ "$RC" = 1 ] && grep -q "guest entered S3" "$TMP/out" && grep -q "woke from S3 .* BSP at 0100:0000" "$TMP/out"; then
	pass "s3: RTC alarm wakes the guest at its waking vector"
else
	fail "s3: RTC alarm wakes the guest at its waking vector" "rc=$RC"; sed 's/^/#   /' "$TMP/out" | tail -n 20
fi

SOCK=$TMP/s3.sock
timeout -k 5 60 "$EMBER" run --kernel "$KERNEL" --test-devices --memory 64M --cmdline nowake \
	--api-socket "$SOCK" </dev/null >"$TMP/nowake" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q "no wake event enabled" "$TMP/nowake" && break; sleep 0.1; done
sleep 1.5   # past the alarm it would have woken at
alive=0; kill -0 $pid 2>/dev/null && alive=1
timeout 20 "$EMBER" ctl "$SOCK" resume >"$TMP/resume" 2>&1; resume_rc=$?
timeout 20 "$EMBER" ctl "$SOCK" quit >/dev/null 2>&1
wait $pid
if [ $alive = 1 ] && grep -q "no wake event enabled" "$TMP/nowake" && ! grep -q "woke from S3" "$TMP/nowake"; then
	pass "s3: no wake event, no wake"
else
	fail "s3: no wake event, no wake" "alive=$alive"; sed 's/^/#   /' "$TMP/nowake" | tail -n 20
fi
if [ $resume_rc != 0 ] && grep -q "S3" "$TMP/resume"; then
	pass "s3: ctl resume refused while asleep"
else
	fail "s3: ctl resume refused while asleep" "rc=$resume_rc: $(cat "$TMP/resume")"
fi
