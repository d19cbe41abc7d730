#!/usr/bin/env bash
# Snapshots and live migration with the dirtyload guest writing its memory
# at CPL3 meanwhile: after a restore or a migration the guest itself checks
# every page against its version table, its running checksum, its vCPUs and
# its timer (exit status 1 = all passed). Both dirty-tracking backends, UNIX
# and TCP, diff snapshots, throttling, --cpu host and a named model
# (x86-64-v2), and every failure case: the destination killed, the link
# cut, a corrupt stream, nobody listening, a corrupt snapshot, a
# destination of another CPU model. The source must go on unharmed in each.
source "$(dirname "$0")/lib.sh"

CHECKS=(
	"snapshot: ctl reports it" "snapshot: source guest unharmed" "snapshot: memory file is sparse"
	"restore (bitmap): guest verifies" "restore (ring): guest verifies"
	"diff snapshot: written" "diff snapshot: smaller than the full one" "restore diff: guest verifies"
	"migrate unix bitmap: completed" "migrate unix bitmap: guest verifies"
	"migrate tcp ring: completed" "migrate tcp ring: guest verifies"
	"migrate tcp bitmap 2 vCPUs: guest verifies" "migrate unix ring 2 vCPUs: guest verifies"
	"migrate throttled: converges" "migrate throttled: guest verifies"
	"x86-64-v2: restore (bitmap): guest verifies" "x86-64-v2: restore (ring) 2 vCPUs: guest verifies"
	"x86-64-v2: migrate unix bitmap to --cpu x86-64-v2: guest verifies"
	"x86-64-v2: migrate tcp ring 2 vCPUs: guest verifies"
	"fail: another CPU model: refused before any RAM" "fail: another CPU model: destination says why"
	"fail: another CPU model: source unharmed" "fail: restore as another CPU model: refused"
	"fail: a host name: refused" "fail: nobody listening: reported" "fail: nobody listening: source unharmed"
	"fail: destination killed: reported" "fail: destination killed: source unharmed"
	"fail: the guest powers off mid-migration: source exits with its status"
	"fail: the guest powers off mid-migration: reported"
	"fail: link cut: reported" "fail: link cut: destination exits with an error" "fail: link cut: source unharmed"
	"fail: corrupt stream: destination refuses" "fail: corrupt stream: source reports the refusal"
	"fail: corrupt stream: source unharmed"
	"fail: corrupt state file: refused" "fail: corrupt memory file: VM stopped"
	"fail: --restore with --memory: usage error" "fail: bad --incoming URI: usage error"
)
require_kvm "${CHECKS[@]}"
K=$GUEST/dirtyload.elf
if [ ! -f "$K" ]; then
	for n in "${CHECKS[@]}"; do fail "$n" "$K not built (make guest)"; done
	exit 0
fi
show() { sed 's/^/#   /' "$1" | tail -n "${2:-15}"; }
PORT=$((20000 + $$ % 20000))
MEM=128M

# start_src NAME BACKEND CPUS RATE SECONDS: a source VM with its socket, of
# CPU model $CPU (default host)
start_src() {
	local name=$1 be=$2 cpus=$3 rate=$4 secs=$5
	rm -f "$TMP/$name.sock"
	"$EMBER" run --kernel "$K" --memory $MEM --cpus "$cpus" --cpu "${CPU:-host}" --debug-exit --dirty-tracking "$be" \
		--cmdline "rate=$rate seconds=$secs cpus=$cpus" --api-socket "$TMP/$name.sock" \
		</dev/null >"$TMP/$name.out" 2>&1 &
	SRC_PID=$!
	for _ in $(seq 100); do grep -q "dirtyload: ready" "$TMP/$name.out" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
guest_ok() {  # NAME RC OUT
	if [ "$2" = 1 ] && grep -q "SUMMARY: 5 tests, 0 failures" "$3"; then pass "$1"
	else fail "$1" "exit $2"; show "$3"; fi
}

# ---- snapshots -------------------------------------------------------------------------
start_src s1 bitmap 1 50 3 || fail "snapshot: ctl reports it" "guest not ready"
"$EMBER" ctl "$TMP/s1.sock" snapshot "$TMP/snapA" >"$TMP/ctl.out" 2>&1
expect_grep "snapshot: ctl reports it" "^snapshot .*snapA: .* MiB written, paused" "$TMP/ctl.out"
sleep 0.3
"$EMBER" ctl "$TMP/s1.sock" snapshot "$TMP/snapB" diff=true >"$TMP/ctl2.out" 2>&1
expect_grep "diff snapshot: written" "^snapshot .*snapB \(diff\): " "$TMP/ctl2.out"
wait_rc $SRC_PID
guest_ok "snapshot: source guest unharmed" "$WRC" "$TMP/s1.out"
# (a missing file counts as 0: the checks fail rather than the script)
alloc=$(du -k "$TMP/snapA/memory" 2>/dev/null | cut -f1); alloc=${alloc:-0}
size=$(( $(stat -c %s "$TMP/snapA/memory" 2>/dev/null || echo 0) / 1024 ))
if [ -n "$alloc" ] && [ "$alloc" -lt "$size" ]; then pass "snapshot: memory file is sparse"
else fail "snapshot: memory file is sparse" "${alloc}K allocated of ${size}K"; fi
dalloc=$(du -k "$TMP/snapB/memory" 2>/dev/null | cut -f1); dalloc=${dalloc:-0}
if [ -f "$TMP/snapB/memory" ] && [ "$dalloc" -lt "$alloc" ]; then pass "diff snapshot: smaller than the full one"
else fail "diff snapshot: smaller than the full one" "${dalloc}K vs ${alloc}K"; fi

run_vm "$TMP/r1.out" 120 --restore "$TMP/snapA"
guest_ok "restore (bitmap): guest verifies" "$RC" "$TMP/r1.out"
run_vm "$TMP/r3.out" 120 --restore "$TMP/snapB"
guest_ok "restore diff: guest verifies" "$RC" "$TMP/r3.out"

start_src s2 ring 1 100 3
"$EMBER" ctl "$TMP/s2.sock" snapshot "$TMP/snapR" >/dev/null 2>&1
wait_rc $SRC_PID
run_vm "$TMP/r2.out" 120 --restore "$TMP/snapR" --dirty-tracking ring
guest_ok "restore (ring): guest verifies" "$RC" "$TMP/r2.out"

# ---- live migration ---------------------------------------------------------------------
# migrate NAME BACKEND CPUS RATE URI_DST URI_SRC [ctl args...]: sets DRC, CTL_RC;
# $DST_ARGS go to the destination
migrate() {
	local name=$1 be=$2 cpus=$3 rate=$4 dst=$5 src=$6; shift 6
	# shellcheck disable=SC2086
	"$EMBER" run --incoming "$dst" --dirty-tracking "$be" ${DST_ARGS:-} </dev/null >"$TMP/$name.dst" 2>&1 &
	local dpid=$!
	sleep 0.3
	start_src "$name" "$be" "$cpus" "$rate" "${SECS:-3}"
	CTL_RC=0
	"$EMBER" ctl "$TMP/$name.sock" migrate "$src" "$@" >"$TMP/$name.ctl" 2>&1 || CTL_RC=$?
	wait_rc $SRC_PID; SRC_RC=$WRC
	wait_rc $dpid; DRC=$WRC
}
migrate m1 bitmap 1 100 "unix:$TMP/m1.mig" "unix:$TMP/m1.mig"
expect_grep "migrate unix bitmap: completed" "^completed: .* downtime" "$TMP/m1.ctl"
guest_ok "migrate unix bitmap: guest verifies" "$DRC" "$TMP/m1.dst"
migrate m2 ring 1 200 "tcp:127.0.0.1:$PORT" "tcp:127.0.0.1:$PORT"
expect_grep "migrate tcp ring: completed" "^completed: .*\(ring\)" "$TMP/m2.ctl"
guest_ok "migrate tcp ring: guest verifies" "$DRC" "$TMP/m2.dst"
migrate m3 bitmap 2 200 "tcp:127.0.0.1:$((PORT + 1))" "tcp:127.0.0.1:$((PORT + 1))"
guest_ok "migrate tcp bitmap 2 vCPUs: guest verifies" "$DRC" "$TMP/m3.dst"
migrate m4 ring 2 200 "unix:$TMP/m4.mig" "unix:$TMP/m4.mig"
guest_ok "migrate unix ring 2 vCPUs: guest verifies" "$DRC" "$TMP/m4.dst"
# The guest dirties 200 MB/s, the link may carry 50: only throttling ends it.
SECS=12 migrate m5 ring 1 200 "unix:$TMP/m5.mig" "unix:$TMP/m5.mig" --bandwidth 50 --downtime-limit 100
if grep -q "^completed:" "$TMP/m5.ctl" && grep -q "(throttled)" "$TMP/m5.ctl"; then pass "migrate throttled: converges"
else fail "migrate throttled: converges" "ctl exit $CTL_RC"; show "$TMP/m5.ctl"; fi
guest_ok "migrate throttled: guest verifies" "$DRC" "$TMP/m5.dst"

# ---- a named CPU model -------------------------------------------------------------------------
CPU=x86-64-v2 start_src v1 bitmap 1 100 3
"$EMBER" ctl "$TMP/v1.sock" snapshot "$TMP/snapV" >/dev/null 2>&1
wait_rc $SRC_PID
run_vm "$TMP/rv1.out" 120 --restore "$TMP/snapV"
guest_ok "x86-64-v2: restore (bitmap): guest verifies" "$RC" "$TMP/rv1.out"
CPU=x86-64-v2 start_src v2 ring 2 100 3
"$EMBER" ctl "$TMP/v2.sock" snapshot "$TMP/snapV2" >/dev/null 2>&1
wait_rc $SRC_PID
run_vm "$TMP/rv2.out" 120 --restore "$TMP/snapV2" --dirty-tracking ring
guest_ok "x86-64-v2: restore (ring) 2 vCPUs: guest verifies" "$RC" "$TMP/rv2.out"
CPU=x86-64-v2 DST_ARGS="--cpu x86-64-v2" migrate mv1 bitmap 1 100 "unix:$TMP/mv1.mig" "unix:$TMP/mv1.mig"
guest_ok "x86-64-v2: migrate unix bitmap to --cpu x86-64-v2: guest verifies" "$DRC" "$TMP/mv1.dst"
CPU=x86-64-v2 migrate mv2 ring 2 200 "tcp:127.0.0.1:$((PORT + 2))" "tcp:127.0.0.1:$((PORT + 2))"
guest_ok "x86-64-v2: migrate tcp ring 2 vCPUs: guest verifies" "$DRC" "$TMP/mv2.dst"

# A destination of another CPU model refuses the "vm" section, the first:
# the source hears it before it sends a page (no pass starts).
DST_ARGS="--cpu x86-64-v2" migrate mx bitmap 1 100 "unix:$TMP/mx.mig" "unix:$TMP/mx.mig"
if [ "$CTL_RC" != 0 ] && grep -q "migration failed: the destination refused the stream: section vm\[0\]: the VM runs --cpu host, another CPU model than --cpu x86-64-v2" "$TMP/mx.ctl" &&
   ! grep -q "^pass " "$TMP/mx.ctl"; then pass "fail: another CPU model: refused before any RAM"
else fail "fail: another CPU model: refused before any RAM" "ctl exit $CTL_RC"; show "$TMP/mx.ctl"; fi
if [ "$DRC" = 2 ] && grep -q "^ember: error: incoming migration refused: section vm\[0\]: .*another CPU model.*(it has " "$TMP/mx.dst"
then pass "fail: another CPU model: destination says why"
else fail "fail: another CPU model: destination says why" "exit $DRC"; show "$TMP/mx.dst"; fi
guest_ok "fail: another CPU model: source unharmed" "$SRC_RC" "$TMP/mx.out"
run_vm "$TMP/rx.out" 60 --restore "$TMP/snapA" --cpu x86-64-v2
if [ "$RC" = 2 ] && grep -q "^ember: error: --restore .*section vm\[0\]: the VM runs --cpu host, another CPU model" "$TMP/rx.out"
then pass "fail: restore as another CPU model: refused"
else fail "fail: restore as another CPU model: refused" "exit $RC"; show "$TMP/rx.out"; fi

# ---- failures: the source goes on ----------------------------------------------------------
start_src f1 bitmap 1 100 3
# a host name is refused at once (the sending thread is sandboxed: no lookups)
rc=0; "$EMBER" ctl "$TMP/f1.sock" migrate "tcp:localhost:$PORT" >"$TMP/f1-name.ctl" 2>&1 || rc=$?
if [ $rc != 0 ] && grep -q "localhost: give a numeric address" "$TMP/f1-name.ctl"; then
	pass "fail: a host name: refused"
else fail "fail: a host name: refused" "ctl exit $rc"; sed 's/^/#   /' "$TMP/f1-name.ctl"; fi
"$EMBER" ctl "$TMP/f1.sock" migrate "unix:$TMP/nobody.mig" >"$TMP/f1.ctl" 2>&1
expect_grep "fail: nobody listening: reported" "migration failed: connecting to .*nobody.mig" "$TMP/f1.ctl"
wait_rc $SRC_PID
guest_ok "fail: nobody listening: source unharmed" "$WRC" "$TMP/f1.out"

"$EMBER" run --incoming "unix:$TMP/f2.mig" </dev/null >"$TMP/f2.dst" 2>&1 &
dpid=$!
sleep 0.3
start_src f2 bitmap 1 100 4
( sleep 1.5; kill -9 $dpid ) &
"$EMBER" ctl "$TMP/f2.sock" migrate "unix:$TMP/f2.mig" --bandwidth 10 >"$TMP/f2.ctl" 2>&1
expect_grep "fail: destination killed: reported" "migration failed: .*(connection broke|reset|Broken pipe)" "$TMP/f2.ctl"
wait_rc $SRC_PID
guest_ok "fail: destination killed: source unharmed" "$WRC" "$TMP/f2.out"
wait $dpid 2>/dev/null

# The guest powers off (after 1 s) while a slow migration is still sending:
# the source stops with the guest's status. Its teardown shuts the
# migration socket down, which main's seccomp filter once forbade (exit 8).
"$EMBER" run --incoming "unix:$TMP/f5.mig" </dev/null >"$TMP/f5.dst" 2>&1 &
dpid=$!
sleep 0.3
start_src f5 bitmap 1 50 1
"$EMBER" ctl "$TMP/f5.sock" migrate "unix:$TMP/f5.mig" --bandwidth 2 >"$TMP/f5.ctl" 2>&1
wait_rc $SRC_PID
guest_ok "fail: the guest powers off mid-migration: source exits with its status" "$WRC" "$TMP/f5.out"
expect_grep "fail: the guest powers off mid-migration: reported" "migration failed|closed the connection" "$TMP/f5.ctl"
kill -9 $dpid 2>/dev/null; wait $dpid 2>/dev/null

# proxied NAME PROXY_ARGS...: destination behind migproxy.py
proxied() {
	local name=$1; shift
	local p=$((PORT + 10 + ${#name} + RANDOM % 100))
	"$EMBER" run --incoming "tcp:127.0.0.1:$p" </dev/null >"$TMP/$name.dst" 2>&1 &
	local dpid=$!
	python3 "$ROOT/tests/integration/migproxy.py" $((p + 500)) "$p" "$@" >"$TMP/$name.proxy" 2>&1 &
	local ppid=$!
	sleep 0.5
	start_src "$name" bitmap 1 100 3
	"$EMBER" ctl "$TMP/$name.sock" migrate "tcp:127.0.0.1:$((p + 500))" >"$TMP/$name.ctl" 2>&1
	wait_rc $SRC_PID; SRC_RC=$WRC
	wait_rc $dpid; DRC=$WRC
	kill $ppid 2>/dev/null; wait $ppid 2>/dev/null
}
proxied f3 --close-after 3000000
expect_grep "fail: link cut: reported" "migration failed" "$TMP/f3.ctl"
if [ "$DRC" != 0 ] && [ "$DRC" != 1 ] && grep -q "ember: error: incoming migration refused: .*truncated" "$TMP/f3.dst"
then pass "fail: link cut: destination exits with an error"
else fail "fail: link cut: destination exits with an error" "exit $DRC"; show "$TMP/f3.dst"; fi
guest_ok "fail: link cut: source unharmed" "$SRC_RC" "$TMP/f3.out"

proxied f4 --flip-at 2000000
if [ "$DRC" = 2 ] && grep -q "incoming migration refused: .*checksum mismatch" "$TMP/f4.dst"
then pass "fail: corrupt stream: destination refuses"
else fail "fail: corrupt stream: destination refuses" "exit $DRC"; show "$TMP/f4.dst"; fi
expect_grep "fail: corrupt stream: source reports the refusal" "migration failed: .*(refused|broke)" "$TMP/f4.ctl"
guest_ok "fail: corrupt stream: source unharmed" "$SRC_RC" "$TMP/f4.out"

cp -r "$TMP/snapA" "$TMP/badstate"
printf '\xff' | dd of="$TMP/badstate/state" bs=1 seek=200 conv=notrunc status=none
run_vm "$TMP/b1.out" 60 --restore "$TMP/badstate"
if [ "$RC" = 2 ] && grep -q "ember: error: --restore .*checksum mismatch" "$TMP/b1.out"; then pass "fail: corrupt state file: refused"
else fail "fail: corrupt state file: refused" "exit $RC"; show "$TMP/b1.out"; fi
cp -r "$TMP/snapA" "$TMP/badmem"
printf 'garbage!' | dd of="$TMP/badmem/memory" bs=1 seek=$((20 << 20)) conv=notrunc status=none
run_vm "$TMP/b2.out" 60 --restore "$TMP/badmem"
if [ "$RC" = 6 ] && grep -q "memory is corrupt at" "$TMP/b2.out"; then pass "fail: corrupt memory file: VM stopped"
else fail "fail: corrupt memory file: VM stopped" "exit $RC"; show "$TMP/b2.out"; fi

run_vm "$TMP/u1.out" 10 --restore "$TMP/snapA" --memory 1G
if [ "$RC" = 2 ] && grep -q "^ember: error: --memory: the machine comes from the snapshot" "$TMP/u1.out"
then pass "fail: --restore with --memory: usage error"; else fail "fail: --restore with --memory: usage error" "exit $RC"; show "$TMP/u1.out"; fi
run_vm "$TMP/u2.out" 10 --incoming "udp:1.2.3.4:5"
if [ "$RC" = 2 ] && grep -q "^ember: error: --incoming udp:1.2.3.4:5: expected tcp:HOST:PORT or unix:PATH" "$TMP/u2.out"
then pass "fail: bad --incoming URI: usage error"; else fail "fail: bad --incoming URI: usage error" "exit $RC"; show "$TMP/u2.out"; fi
