#!/usr/bin/env bash
# virtio-blk and virtio-rng across a snapshot/restore and a live migration
# over a UNIX socket: the migvirtio guest writes, reads back and compares
# sectors and fetches random bytes before and after, each request answered
# by an MSI-X interrupt (exit status 1 = all passed). The destination opens
# the same disk image. A destination without the rng, or with a disk of
# another size, refuses the state.
source "$(dirname "$0")/lib.sh"

CHECKS=(
	"snapshot: taken while the devices work" "restore: guest verifies" "restore: requests after the restore"
	"migrate unix: completed" "migrate unix: guest verifies" "migrate unix: requests after the migration"
	"migrate unix: source stopped after handing over"
	"fail: restore without --rng: refused" "fail: restore with a disk of another size: refused"
)
require_kvm "${CHECKS[@]}"
K=$GUEST/migvirtio.elf
if [ ! -f "$K" ]; then
	for n in "${CHECKS[@]}"; do fail "$n" "$K not built (make guest)"; done
	exit 0
fi
show() { sed 's/^/#   /' "$1" | tail -n "${2:-15}"; }
IMG=$TMP/disk.img
rm -f "$IMG"; truncate -s 1M "$IMG"

# start_src NAME SECONDS: a source VM with its socket, once the guest is ready
start_src() {
	rm -f "$TMP/$1.sock"
	"$EMBER" run --kernel "$K" --memory 64M --debug-exit --disk "$IMG" --rng --cmdline "seconds=$2" \
		--api-socket "$TMP/$1.sock" </dev/null >"$TMP/$1.out" 2>&1 &
	SRC_PID=$!
	for _ in $(seq 200); do grep -q "migvirtio: ready" "$TMP/$1.out" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
guest_ok() {  # NAME RC OUT
	if [ "$2" = 1 ] && grep -q "SUMMARY: 7 tests, 0 failures" "$3"; then pass "$1"
	else fail "$1" "exit $2"; show "$3"; fi
}
# Rounds the guest ran after the hand-over: it prints "alive" each second.
after_ok() {  # NAME OUT
	if grep -q "^migvirtio: alive" "$2"; then pass "$1"; else fail "$1" "no round after the hand-over"; show "$2"; fi
}

# ---- snapshot and restore ------------------------------------------------------------
if start_src s1 5; then
	sleep 1
	"$EMBER" ctl "$TMP/s1.sock" snapshot "$TMP/snap" >"$TMP/snap.ctl" 2>&1
	expect_grep "snapshot: taken while the devices work" "^snapshot .*snap: .* written, paused" "$TMP/snap.ctl"
else
	fail "snapshot: taken while the devices work" "guest not ready"; show "$TMP/s1.out"
fi
kill "$SRC_PID" 2>/dev/null; wait_rc "$SRC_PID"
run_vm "$TMP/r1.out" 120 --restore "$TMP/snap" --disk "$IMG" --rng
guest_ok "restore: guest verifies" "$RC" "$TMP/r1.out"
after_ok "restore: requests after the restore" "$TMP/r1.out"

run_vm "$TMP/f1.out" 60 --restore "$TMP/snap" --disk "$IMG"
if [ "$RC" = 2 ] && grep -q "virtio-rng.*no such device" "$TMP/f1.out"; then pass "fail: restore without --rng: refused"
else fail "fail: restore without --rng: refused" "exit $RC"; show "$TMP/f1.out"; fi
truncate -s 2M "$TMP/other.img"
run_vm "$TMP/f2.out" 60 --restore "$TMP/snap" --disk "$TMP/other.img" --rng
if [ "$RC" = 2 ] && grep -q "virtio-blk.*sectors" "$TMP/f2.out"; then pass "fail: restore with a disk of another size: refused"
else fail "fail: restore with a disk of another size: refused" "exit $RC"; show "$TMP/f2.out"; fi

# ---- live migration over a UNIX socket -------------------------------------------------
"$EMBER" run --incoming "unix:$TMP/m.mig" --disk "$IMG" --rng </dev/null >"$TMP/m.dst" 2>&1 &
DPID=$!
sleep 0.3
if start_src m 5; then
	sleep 1
	"$EMBER" ctl "$TMP/m.sock" migrate "unix:$TMP/m.mig" >"$TMP/m.ctl" 2>&1
else
	fail "migrate unix: completed" "guest not ready"; show "$TMP/m.out"
fi
wait_rc "$SRC_PID"; SRC_RC=$WRC
wait_rc "$DPID"; DRC=$WRC
expect_grep "migrate unix: completed" "^completed: .* downtime" "$TMP/m.ctl"
guest_ok "migrate unix: guest verifies" "$DRC" "$TMP/m.dst"
after_ok "migrate unix: requests after the migration" "$TMP/m.dst"
if [ "$SRC_RC" = 0 ] && ! grep -q "SUMMARY" "$TMP/m.out"; then pass "migrate unix: source stopped after handing over"
else fail "migrate unix: source stopped after handing over" "exit $SRC_RC"; show "$TMP/m.out"; fi
