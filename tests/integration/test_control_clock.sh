#!/usr/bin/env bash
# What a guest sees when the VM is paused (docs/control-api.md, "Pause and
# the guest's clocks"): tests/guest/kernels/clock.c reads the TSC at CPL3 in
# a loop and reports its largest step. Paused for 1.5 s through `ember ctl`,
# the guest must see one step of about that length, and its TSC and ACPI PM
# timer must agree on the elapsed time (both run on through a pause). The
# same kernel without a pause must not see such a step (so the check can
# fail).
source "$(dirname "$0")/lib.sh"

KERNEL=$GUEST/clock.elf
SOCK=$TMP/api.sock
PAUSE=1.5
require_kvm "clock: without a pause" "clock: across a pause"
if [ ! -f "$KERNEL" ]; then
	fail "clock: across a pause" "$KERNEL missing (make guest)"
	exit 0
fi

# field NAME FILE: the number after NAME= on the guest's result line.
field() { grep -Eo "$1=[0-9]+" "$2" | head -n 1 | cut -d= -f2; }

# Without a pause.
run_vm "$TMP/plain.out" 60 --kernel "$KERNEL" --memory 64M --debug-exit --cmdline seconds=3
plain_gap=$(field max_gap_ms "$TMP/plain.out")
if [ "$RC" -eq 1 ] && [ -n "$plain_gap" ] && [ "$plain_gap" -lt 1000 ]; then
	pass "clock: without a pause the largest TSC step is short (${plain_gap} ms)"
else
	fail "clock: without a pause" "exit $RC, largest step '${plain_gap}' ms"; sed 's/^/#   /' "$TMP/plain.out" | tail -n 10
fi

# With one.
OUT=$TMP/paused.out
# The guest measures long enough for `ember ctl` to pause it inside the
# window: in the TCG test host each ctl call takes seconds.
timeout -k 5 $((60 * TIME_SCALE)) "$EMBER" run --kernel "$KERNEL" --memory 64M --debug-exit --api-socket "$SOCK" \
	--cmdline seconds=$((5 * TIME_SCALE)) </dev/null >"$OUT" 2>&1 &
VM_PID=$!
for _ in $(seq 300); do grep -qs "^clock: measuring" "$OUT" && break; sleep 0.1; done
sleep 1
t0=$(date +%s%N)
p=$("$EMBER" ctl "$SOCK" pause)
sleep $PAUSE
r=$("$EMBER" ctl "$SOCK" resume)
t1=$(date +%s%N)
RC=0; wait $VM_PID || RC=$?
host_ms=$(( (t1 - t0) / 1000000 ))
gap=$(field max_gap_ms "$OUT"); tsc=$(field tsc_ms "$OUT"); pm=$(field pmtmr_ms "$OUT")
echo "# paused for ${host_ms} ms (host); guest: largest TSC step ${gap} ms, TSC ${tsc} ms, PM timer ${pm} ms"
expect_eq "clock: pause and resume through ember ctl" "$p $r" "paused running"
# The vCPU was parked before `pause` answered and ran again only after
# `resume` was sent, so the step is at least the sleep between them (less
# a little calibration error) and at most the whole pause/resume exchange.
if [ "$RC" -eq 1 ] && [ -n "$gap" ] && [ "$gap" -ge 1400 ] && [ "$gap" -le $((host_ms + 500)) ]; then
	pass "clock: across a pause the guest's TSC jumps by the pause (${gap} ms)"
else
	fail "clock: across a pause" "exit $RC, step '${gap}' ms for a ${host_ms} ms pause"
	sed 's/^/#   /' "$OUT" | tail -n 10
fi
expect_grep "clock: TSC and PM timer agree across the pause" "^ok 2 - TSC .* and PM timer .* agree" "$OUT"
