#!/usr/bin/env bash
# --jail DIR --uid U --gid G (docs/threat-model.md): the jailed Ember runs a
# guest-kit kernel as U:G with no capabilities, no_new_privs, its seccomp
# filters, in its own mount namespace whose root is DIR (no host file in
# sight); a guest reset builds the new VM inside the jail; bad jail options
# are refused before anything runs. Needs root (so does --jail).
source "$(dirname "$0")/lib.sh"

NAMES=("jail: guest runs" "jail: uid and gid" "jail: no capabilities" "jail: no_new_privs and seccomp"
       "jail: own mount namespace" "jail: root is DIR" "jail: no host files" "jail: rlimits"
       "jail: restart inside the jail" "jail: socket removed at exit" "jail: hello powers off"
       "jail: bad options refused")
require_kvm "${NAMES[@]}"
if [ "$(id -u)" != 0 ]; then
	for n in "${NAMES[@]}"; do skip "$n" "needs root"; done
	exit 0
fi
# The production build: the sanitizer runtime wants /proc, which a jail lacks.
EMBER=$ROOT/build/ember
for f in "$EMBER" "$GUEST/idle.elf" "$GUEST/hello.elf"; do
	if [ ! -e "$f" ]; then
		for n in "${NAMES[@]}"; do fail "$n" "$f missing (make all)"; done
		exit 0
	fi
done

ID=65534   # nobody / nogroup
JAIL=$TMP/jail
mkdir -m 755 "$JAIL"
touch "$JAIL/only-this"
# The control socket lives where the jailed user may remove it at exit.
RUN=$TMP/run
mkdir -m 755 "$RUN"
chown $ID:$ID "$RUN"
SOCK=$RUN/api.sock
ctl() { timeout -k 5 30 "$EMBER" ctl "$@"; }

OUT=$TMP/jail.out
# A disk outside the jail: opened before it, and again usable by the VM a
# guest reset builds inside it.
truncate -s 1M "$TMP/disk.img"
"$EMBER" run --kernel "$GUEST/idle.elf" --memory 64M --cpus 2 --api-socket "$SOCK" --disk "$TMP/disk.img" \
	--on-reboot restart --cmdline button=reset --jail "$JAIL" --uid $ID --gid $ID </dev/null >"$OUT" 2>&1 &
PID=$!
ready() {  # wait for the Nth "idle: ready"
	for _ in $(seq 300); do
		[ "$(grep -c '^idle: ready' "$OUT")" -ge "$1" ] && return 0
		kill -0 $PID 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
if ! ready 1; then
	for n in "${NAMES[@]}"; do fail "$n" "the jailed VM did not start"; done
	sed 's/^/#   /' "$OUT" | tail -n 10
	kill $PID 2>/dev/null
	exit 0
fi
st=/proc/$PID/status
field() { awk -v k="$1:" '$1 == k { $1 = ""; print substr($0, 2) }' "$st"; }

state=$(ctl --json "$SOCK" status | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["state"])')
expect_eq "jail: guest runs" "$state" "running"
expect_eq "jail: uid and gid" "$(field Uid) / $(field Gid) / [$(field Groups)]" \
	"$ID $ID $ID $ID / $ID $ID $ID $ID / []"
expect_eq "jail: no capabilities" "$(field CapInh) $(field CapPrm) $(field CapEff) $(field CapBnd) $(field CapAmb)" \
	"0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000"
expect_eq "jail: no_new_privs and seccomp" "$(field NoNewPrivs) $(field Seccomp)" "1 2"
if [ "$(readlink /proc/$PID/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]; then
	pass "jail: own mount namespace"; else fail "jail: own mount namespace" "same as the host's"; fi
expect_eq "jail: root is DIR" "$(ls -A /proc/$PID/root/ | tr '\n' ' ')" "only-this "
missing=
for f in /etc/passwd /dev/kvm /proc/self /tmp "$GUEST/idle.elf" "$SOCK"; do
	[ -e "/proc/$PID/root$f" ] && missing="$missing $f"
done
if [ -z "$missing" ]; then pass "jail: no host files"; else fail "jail: no host files" "visible:$missing"; fi
expect_eq "jail: rlimits" "$(awk '/^Max core file size/ {print $5, $6} /^Max open files/ {print $4, $5}' /proc/$PID/limits | tr '\n' ' ')" \
	"0 0 4096 4096 "

# The guest resets (power button -> reset); the new VM is built in the jail
# from what was opened before it.
ctl "$SOCK" shutdown timeout=20 >/dev/null 2>&1
if ready 2 && [ "$(ctl --json "$SOCK" status | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["state"])')" = running ]; then
	pass "jail: restart inside the jail"
else
	fail "jail: restart inside the jail"; sed 's/^/#   /' "$OUT" | tail -n 10
fi
ctl "$SOCK" quit >/dev/null 2>&1
rc=0; wait $PID || rc=$?
if [ $rc = 0 ] && [ ! -e "$SOCK" ]; then pass "jail: socket removed at exit"; else
	fail "jail: socket removed at exit" "exit $rc, socket $( [ -e "$SOCK" ] && echo left || echo gone)"
	sed 's/^/#   /' "$OUT" | tail -n 10
fi

run_vm "$TMP/hello.out" 60 --kernel "$GUEST/hello.elf" --memory 64M --cpus 2 --jail "$JAIL" --uid $ID --gid $ID
if [ "$RC" = 0 ] && grep -q '^Hello from the Ember guest kit on 2 vCPUs' "$TMP/hello.out"; then
	pass "jail: hello powers off"; else fail "jail: hello powers off" "exit $RC"; sed 's/^/#   /' "$TMP/hello.out" | tail -n 5; fi

# Refused with exit 2 and one line, before any guest runs.
bad=
check_bad() {  # PATTERN ARGS...
	local pat=$1; shift
	run_vm "$TMP/bad.out" 20 --kernel "$GUEST/hello.elf" "$@"
	if [ "$RC" != 2 ] || ! grep -q -- "$pat" "$TMP/bad.out" || grep -q '^Hello' "$TMP/bad.out"; then
		bad="$bad [$*: exit $RC]"
	fi
}
check_bad "--jail $TMP/nope: the directory: No such file or directory" --jail "$TMP/nope" --uid $ID --gid $ID
check_bad "--jail needs --uid and --gid" --jail "$JAIL" --uid $ID
check_bad "--uid and --gid go with --jail DIR" --uid $ID --gid $ID
check_bad "--uid 0: a jail that keeps root is none" --jail "$JAIL" --uid 0 --gid 0
check_bad "--jail relative: give an absolute path" --jail relative --uid $ID --gid $ID
if [ -z "$bad" ]; then pass "jail: bad options refused"; else fail "jail: bad options refused" "$bad"; fi
exit 0
