#!/usr/bin/env bash
# The control plane (docs/control-api.md): `ember run --api-socket` and
# `ember ctl` with every command, the socket's safety rules, events, and
# every kind of bad or abusive client (control_client.py), with the VM still
# running afterwards. Guest: tests/guest/kernels/idle.c.
source "$(dirname "$0")/lib.sh"

KERNEL=$GUEST/idle.elf
SOCK=$TMP/api.sock
PY="python3 $ROOT/tests/integration/control_client.py"
NAMES=("control: socket" "control: status" "control: stats" "control: pause/resume" "control: events"
       "control: errors" "control: bad clients" "control: shutdown" "control: quit" "control: restart")
require_kvm "${NAMES[@]}"
if [ ! -f "$KERNEL" ]; then
	for n in "${NAMES[@]}"; do fail "$n" "$KERNEL missing (make guest)"; done
	exit 0
fi

ctl() { timeout -k 5 60 "$EMBER" ctl "$@"; }

# start_vm NAME ARGS...: ember run in the background on $SOCK; waits for
# the guest's ready line. Sets VM_PID; returns 1 if it never got ready.
start_vm() {
	local name=$1; shift
	VM_OUT=$TMP/$name.out
	timeout -k 5 180 "$EMBER" run --kernel "$KERNEL" --memory 64M --api-socket "$SOCK" "$@" \
		</dev/null >"$VM_OUT" 2>&1 &
	VM_PID=$!
	for _ in $(seq 300); do
		grep -qs "^idle: ready" "$VM_OUT" && return 0
		kill -0 $VM_PID 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/#   /' "$VM_OUT" | tail -n 20
	return 1
}

# wait_vm: the VM's exit code in RC (124: it did not exit in time).
wait_vm() {
	RC=0
	wait $VM_PID || RC=$?
}

# json EXPR: evaluate a Python expression over the reply `r` on stdin.
json() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

# start_watch FILE: `ember ctl --json watch` into FILE (WATCH_PID); returns
# once the server counts it as a client, so no event can slip past it.
start_watch() {
	"$EMBER" ctl --json "$SOCK" watch >"$1" 2>&1 &
	WATCH_PID=$!
	for _ in $(seq 100); do
		[ "$(ctl --json "$SOCK" stats | json 'r["result"]["control"]["clients"]')" -ge 2 ] && return 0
		sleep 0.05
	done
}

# state_events FILE: the state events a watcher saw, as "paused running
# stopping/quit".
state_events() {
	python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join(e["state"] + ("/" + e["reason"] if "reason" in e else "") for e in ev if e["event"] == "state"))' "$1"
}

# check NAME COMMAND...: pass when the command succeeds; its output is
# shown only when it fails.
check() {
	local name=$1; shift
	if "$@" >"$TMP/check.out" 2>&1; then pass "$name"; else
		fail "$name" "$*"; sed 's/^/#   /' "$TMP/check.out" | tail -n 10; fi
}

# ---- one VM for the commands and the bad clients --------------------------
if ! start_vm main --cpus 2; then
	for n in "${NAMES[@]}"; do fail "$n" "the VM did not come up"; done
	exit 0
fi

mode=$(stat -c %a "$SOCK"); type=$(stat -c %F "$SOCK")
check "control: socket is a socket with mode 0600" test "$type:$mode" = "socket:600"

start_watch "$TMP/events"

ctl --json "$SOCK" status >"$TMP/status.json"; rc=$?
st=$(json 'r["result"]["state"], r["result"]["vcpus"], r["result"]["memory_bytes"], bool(r["result"]["backend"]), sorted(d["name"] for d in r["result"]["devices"]), r["id"], r["ok"]' <"$TMP/status.json")
expect_eq "control: status (state, vCPUs, memory, backend, devices)" "$rc $st" \
	"0 running 2 67108864 True ['acpi-pm', 'i8042', 'pci-cf8', 'pci-ecam', 'pci-io', 'pci-mmio32', 'pci-mmio64', 'serial'] 1 True"
ctl "$SOCK" status >"$TMP/status.txt"
expect_grep "control: status human-readable" "^state: +running" "$TMP/status.txt"
expect_grep "control: status lists the serial port" "^  serial +pio +0x3f8-0x3ff" "$TMP/status.txt"

ctl --json "$SOCK" stats >"$TMP/stats.json"; rc=$?
st=$(json 'len(r["result"]["vcpus"]), r["result"]["vcpus"][0]["exits"].get("io", 0) > 0, r["result"]["vcpus"][0]["exits_total"] == sum(r["result"]["vcpus"][0]["exits"].values()), r["result"]["devices"]["serial"]["tx_bytes"] > 0, "unhandled_reads" in r["result"]["buses"]["pio"]' <"$TMP/stats.json")
expect_eq "control: stats (exits by reason per vCPU, serial bytes, bus counters)" "$rc $st" "0 2 True True True True"
ctl "$SOCK" stats >"$TMP/stats.txt"
expect_grep "control: stats human-readable" "^vcpu0: [0-9]+ exits: .*io [0-9]+" "$TMP/stats.txt"
ctl "$SOCK" help >"$TMP/help.txt"
expect_grep "control: help lists shutdown and its timeout" "timeout=integer" "$TMP/help.txt"

# Pause and resume (what the guest sees: test_control_clock.sh).
out=$(ctl "$SOCK" pause); rc=$?
expect_eq "control: pause" "$rc $out" "0 paused"
state=$(ctl --json "$SOCK" status | json 'r["result"]["state"]')
expect_eq "control: status while paused" "$state" "paused"
exits1=$(ctl --json "$SOCK" stats | json 'sum(c["exits_total"] for c in r["result"]["vcpus"])')
sleep 0.3
exits2=$(ctl --json "$SOCK" stats | json 'sum(c["exits_total"] for c in r["result"]["vcpus"])')
expect_eq "control: no vCPU exits while paused" "$exits2" "$exits1"
out=$(ctl "$SOCK" pause); rc=$?
expect_eq "control: pause when paused is fine" "$rc $out" "0 paused"
ctl "$SOCK" shutdown >"$TMP/out" 2>&1; rc=$?
expect_eq "control: shutdown while paused is refused (exit 1)" "$rc" 1
expect_grep "control: ... with bad-state" "\[bad-state\]" "$TMP/out"
out=$(ctl "$SOCK" resume); rc=$?
expect_eq "control: resume" "$rc $out" "0 running"
out=$(ctl "$SOCK" resume); rc=$?
expect_eq "control: resume when running is fine" "$rc $out" "0 running"

# Errors through ember ctl: exit 1 and the code.
ctl_error() {  # NAME CODE ARGS...
	local name=$1 code=$2; shift 2
	local rc=0
	ctl "$SOCK" "$@" >"$TMP/out" 2>&1 || rc=$?
	if [ $rc -eq 1 ] && grep -q "\[$code\]" "$TMP/out"; then pass "$name"; else
		fail "$name" "exit $rc"; sed 's/^/#   /' "$TMP/out"; fi
}
ctl_error "control: unknown command" unknown-command frobnicate
ctl_error "control: argument of the wrong type" invalid-argument shutdown timeout=soon
ctl_error "control: argument out of range" invalid-argument shutdown timeout=-1
ctl_error "control: unknown argument" invalid-argument status verbose=true
ctl --json "$SOCK" frobnicate >"$TMP/out" 2>&1; rc=$?
st=$(json 'r["ok"], r["error"]["code"]' <"$TMP/out")
expect_eq "control: --json error reply" "$rc $st" "1 False unknown-command"
rc=0; "$EMBER" ctl "$TMP/nonexistent.sock" status >"$TMP/out" 2>&1 || rc=$?
expect_eq "control: ctl without a VM exits 3" "$rc" 3
rc=0; "$EMBER" ctl >"$TMP/out" 2>&1 || rc=$?
expect_eq "control: ctl without arguments exits 2" "$rc" 2
rc=0; "$EMBER" ctl "$SOCK" shutdown timeout >"$TMP/out" 2>&1 || rc=$?
expect_eq "control: ctl NAME without =VALUE exits 2" "$rc" 2

# Bad input on the wire: an error reply each, the connection stays usable.
$PY send "$SOCK" 'not json' '{"id":1,"command":"status"' '[1]' 'null' '{"command":"status"}' \
	'{"id":1.5,"command":"status"}' '{"id":2,"command":7}' '{"id":3,"command":"status","extra":0}' \
	'{"id":4,"command":"status","args":[]}' '{"id":5,"command":"shutdown","args":{"timeout":"soon"}}' \
	'{"id":6,"command":"shutdown","args":{"timeout":1e3}}' '{"id":7,"command":"nosuch"}' '' \
	'{"id":"s","command":"status"} {"id":9,"command":"status"}' '{"id":"last","command":"status"}' \
	>"$TMP/out" 2>&1
expect_eq "control: malformed JSON, wrong types, unknown commands: one error each" "$(tr '\n' ' ' <"$TMP/out")" \
"parse-error null parse-error null invalid-request null invalid-request null invalid-request null \
invalid-request null invalid-request 2 invalid-request 3 invalid-argument 4 invalid-argument 5 \
invalid-argument 6 unknown-command 7 parse-error null ok \"last\" still-usable "
check "control: invalid UTF-8 -> parse-error" $PY bytes "$SOCK" 7b226964223a312c22636f6d6d616e64223a2273ff227d parse-error
check "control: NUL byte -> parse-error" $PY bytes "$SOCK" 7b226964223a312c00226d223a317d parse-error
check "control: 70000-byte line -> line-too-long, then closed" $PY toolong "$SOCK" 70000
check "control: a 60000-byte line is still read (invalid-request)" $PY send "$SOCK" \
	"{\"id\":1,\"command\":\"status\",\"pad\":\"$(head -c 60000 /dev/zero | tr '\0' x)\"}"
check "control: EOF after requests: all answered, then closed" $PY halfclose "$SOCK"
check "control: flood of 20000 requests, each answered in order" $PY flood "$SOCK" 20000
check "control: 100 clients that send and vanish" $PY vanish "$SOCK" 100

# A client that never reads must not hold up anyone.
$PY stall "$SOCK" 4 >"$TMP/stall.out" 2>&1 &
STALL_PID=$!
for _ in $(seq 100); do grep -qs . "$TMP/stall.out" && break; sleep 0.1; done
t0=$(date +%s%N)
out=$(timeout 5 "$EMBER" ctl --timeout 3 --json "$SOCK" status | json 'r["result"]["state"]')
t1=$(date +%s%N)
expect_eq "control: served while another client does not read" "$out" "running"
expect_grep "control: the stalled client filled its buffers" "stalled after sending [0-9]+ bytes|closed the stalled" "$TMP/stall.out"
wait $STALL_PID
echo "# status with a stalled client took $(( (t1 - t0) / 1000000 )) ms"

# Too many clients: CTL_MAX_CLIENTS (32) counts the watcher too.
others=$(ctl --json "$SOCK" stats | json 'r["result"]["control"]["clients"] - 1')
check "control: 32 clients at once; the 33rd is refused" $PY clients "$SOCK" $((32 - others))

state=$(ctl --json "$SOCK" status | json 'r["result"]["state"]')
expect_eq "control: the VM is still running after all that" "$state" "running"

# quit: the VM stops now, exit 0, the socket goes away, watchers see why.
out=$(ctl "$SOCK" quit); rc=$?
expect_eq "control: quit" "$rc $out" "0 stopping"
wait_vm
expect_eq "control: quit: ember exits 0" "$RC" 0
check "control: quit: the socket file is removed" test ! -e "$SOCK"
expect_no_grep "control: no sanitizer reports" "ERROR: (Address|Leak)Sanitizer|runtime error" "$VM_OUT"
rc=0; wait $WATCH_PID || rc=$?
expect_eq "control: watch ends with the VM (exit 0)" "$rc" 0
states=$(state_events "$TMP/events")
expect_eq "control: state events" "$states" "paused running stopping/quit"

# ---- the socket path -------------------------------------------------------
bad_path() {  # NAME PATTERN
	local rc=0
	"$EMBER" run --kernel "$KERNEL" --memory 64M --api-socket "$SOCK" </dev/null >"$TMP/out" 2>&1 || rc=$?
	if [ $rc -eq 2 ] && grep -Eq "^ember: error: .*$2" "$TMP/out"; then pass "$1"; else
		fail "$1" "exit $rc"; sed 's/^/#   /' "$TMP/out" | tail -n 5; fi
}
echo precious >"$SOCK"
bad_path "control: socket path that is a file: refused" "exists and is not a socket"
check "control: ... and the file is left alone" grep -q precious "$SOCK"
rm -f "$SOCK"; mkdir "$SOCK"
bad_path "control: socket path that is a directory: refused" "not a socket"
rmdir "$SOCK"
rc=0; "$EMBER" run --kernel "$KERNEL" --api-socket "$TMP/$(head -c 120 /dev/zero | tr '\0' a)" </dev/null >"$TMP/out" 2>&1 || rc=$?
expect_eq "control: socket path too long: exit 2" "$rc" 2
$PY stale "$SOCK" >/dev/null
if start_vm stale; then
	pass "control: a stale socket is replaced"
	bad_path "control: a socket someone listens on: refused" "another process is listening"
	out=$(ctl "$SOCK" status | head -n 1)
	expect_eq "control: ... and the first VM still answers" "$out" "state:    running"
	ctl "$SOCK" quit >/dev/null; wait_vm
else
	fail "control: a stale socket is replaced" "the VM did not start"
fi

# ---- shutdown ----------------------------------------------------------------
if start_vm shutdown; then
	ctl "$SOCK" shutdown >"$TMP/out" 2>&1; rc=$?
	expect_eq "control: shutdown: the guest powers off (ctl exit 0)" "$rc" 0
	expect_grep "control: shutdown: ctl says so" "the VM stopped: poweroff" "$TMP/out"
	wait_vm
	expect_eq "control: shutdown: ember exits 0" "$RC" 0
	expect_grep "control: shutdown: the guest saw the power button" "^idle: power button pressed, powering off" "$VM_OUT"
else
	fail "control: shutdown" "the VM did not start"
fi
if start_vm ignore --cmdline nopowerbutton; then
	start_watch "$TMP/events2"
	ctl --json "$SOCK" shutdown timeout=1 >"$TMP/out" 2>&1; rc=$?
	st=$(json 'r["ok"], r["result"]["forced"], r["result"]["stop_reason"]' <"$TMP/out")
	expect_eq "control: shutdown of a guest that ignores it: stopped after the timeout" "$rc $st" "0 True True quit"
	wait_vm
	expect_eq "control: ... ember exits 0" "$RC" 0
	wait $WATCH_PID
	expect_grep "control: ... a shutdown-timeout event" '"event":"shutdown-timeout"' "$TMP/events2"
	expect_no_grep "control: ... the guest never saw the button" "power button pressed" "$VM_OUT"
else
	fail "control: shutdown timeout" "the VM did not start"
fi

# ---- guest reset with --on-reboot restart: clients stay connected ----------
if start_vm restart --on-reboot restart --cmdline button=reset; then
	start_watch "$TMP/events3"
	ctl --json "$SOCK" shutdown timeout=30 >"$TMP/out" 2>&1; rc=$?
	st=$(json 'r["result"]["forced"], r["result"]["stop_reason"]' <"$TMP/out")
	expect_eq "control: restart: shutdown answered when the guest reset" "$rc $st" "0 False reset"
	for _ in $(seq 300); do [ "$(grep -c '^idle: ready' "$VM_OUT")" -ge 2 ] && break; sleep 0.1; done
	state=$(ctl --json "$SOCK" status | json 'r["result"]["state"]')
	expect_eq "control: restart: the same socket serves the new VM" "$state" "running"
	ctl "$SOCK" quit >/dev/null
	wait_vm
	wait $WATCH_PID
	states=$(state_events "$TMP/events3")
	expect_eq "control: restart: a watcher stays connected through the reset" "$states" "stopping/reset running stopping/quit"
else
	fail "control: restart" "the VM did not start"
fi
