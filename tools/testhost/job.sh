#!/bin/bash
# /usr/sbin/testhost-job in the test host's system image: mounts the work
# disk at the repository's own path, runs the job with its output on the
# second serial port (ttyS1), writes "TESTHOST-EXIT <status>" there, packs
# $TESTHOST_OUT onto the out disk as a tar archive and powers off. The job
# comes in on the out disk too: a tar of cmd (a bash script) and env.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
ip link set lo up
echo testhost >/proc/sys/kernel/hostname
say() { echo "testhost-job: $*" >/dev/console; }
off() { sync; busybox poweroff -f; sleep 10; }
disk() {
	local b
	for b in /sys/block/vd*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && { echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^testhost\.$1=//p"; }
WORK=$(arg work)
work=$(disk work) || { say "error: no work disk"; off; }
mkdir -p "$WORK"
mount -t ext4 "$work" "$WORK" || { say "error: cannot mount $work at $WORK"; off; }
export TESTHOST_OUT=/run/testhost-out HOME=/root TERM=dumb
mkdir -p "$TESTHOST_OUT"
# The job: a tar of cmd and env at the start of the out disk.
out=$(disk out) || { say "error: no out disk"; off; }
J=/run/testhost-job
mkdir -p "$J"
tar -C "$J" -xf "$out" || { say "error: no job on the out disk"; off; }
set -a
# shellcheck disable=SC1091
. "$J/env"
set +a
exec 3>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo 2>/dev/null
cd "$WORK" || off
say "running the job"
bash "$J/cmd" </dev/null >&3 2>&3
rc=$?
echo "TESTHOST-EXIT $rc" >&3
if [ -n "$(ls -A "$TESTHOST_OUT")" ]; then
	if tar -C "$TESTHOST_OUT" -cf "$out" . 2>/dev/console; then
		sync
		echo "TESTHOST-OUT-PACKED" >&3
	else
		say "could not write the out disk"
	fi
fi
off
