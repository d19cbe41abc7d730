#!/bin/sh
# The guest side of tests/integration/test_linux_migration.sh: lib.sh's
# linux_initrd_with adds it to tools/linux/build.sh's initramfs as
# /ember-test.sh, which /init runs (busybox sh) once the virtio modules are
# loaded. Every line it prints starts with "EMBER-T: ".
#
# ember.lm=flags on the kernel command line: print the CPU flags and power
# off. Otherwise it keeps the guest busy until told to stop:
#  - a ticker: every 0.5 s n=n+1, the record "rec n=N up=UPTIME" written to
#    sector N of /dev/vda (O_DIRECT), the record of n-1 read back (O_DIRECT)
#    and compared, then one line "tick n=N up=UPTIME date=EPOCH";
#  - a churner: rounds that rewrite 4 MiB of tmpfs with a round's pattern
#    and check, before the next round, that the file still has the MD5 it
#    had when written (pages dirtied while a migration copies RAM);
#  - 16 MiB of random bytes in tmpfs written once (its MD5 printed), which
#    "m" checks again: pages not written since the first pass;
#  - commands read from the console (ttyS0), one a line, short (the UART's
#    FIFO holds 64 bytes): "p TOKEN" answers "pong TOKEN ..." with the
#    counts of mismatches; "m" prints the blob's MD5; "f" the CPU flags;
#    "n ADDR" configures eth0 as ADDR/24; "s" stops the ticker and the
#    churner, prints "stopped ...", syncs and powers off.
say() { echo "EMBER-T: $*"; }
flags() {
	# every CPU's flags line; "flagsets" = how many different ones
	say "flags $(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	say "flagsets $(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | sort -u | wc -l) cpus=$(nproc)"
}
case " $(cat /proc/cmdline) " in
*" ember.lm=flags "*)
	flags
	say "powering off"
	poweroff -f
	exit 0
	;;
esac

stty -echo 2>/dev/null
say "cpus=$(nproc)"
say "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
flags
if [ ! -b /dev/vda ]; then say "no /dev/vda"; fi
dd if=/dev/urandom of=/tmp/blob bs=1M count=16 2>/dev/null
say "blob $(md5sum </tmp/blob | cut -d' ' -f1)"
echo 0 >/tmp/disk.bad
echo 0 >/tmp/churn.bad
echo 0 >/tmp/churn.rounds

(
	n=0 prev=
	while [ ! -e /tmp/stop ]; do
		n=$((n + 1))
		up=$(cut -d' ' -f1 /proc/uptime)
		rec="rec n=$n up=$up"
		printf '%-511s\n' "$rec" | dd of=/dev/vda bs=512 seek=$n oflag=direct conv=notrunc status=none ||
			say "disk write of n=$n failed"
		if [ -n "$prev" ]; then
			got=$(dd if=/dev/vda bs=512 skip=$((n - 1)) count=1 iflag=direct status=none | tr -d '\000\n' | sed 's/ *$//')
			if [ "$got" != "$prev" ]; then
				say "disk MISMATCH at n=$((n - 1)): '$got', wrote '$prev'"
				echo $(($(cat /tmp/disk.bad) + 1)) >/tmp/disk.bad
			fi
		fi
		prev=$rec
		printf 'EMBER-T: tick n=%d up=%s date=%s\n' "$n" "$up" "$(date +%s)"
		sleep 0.5
	done
	say "ticker stopped at n=$n"
) &
TICKER=$!

(
	k=0 want=
	while [ ! -e /tmp/stop ]; do
		if [ -n "$want" ]; then
			have=$(md5sum </tmp/churn | cut -d' ' -f1)
			if [ "$have" != "$want" ]; then
				say "churn MISMATCH in round $k: $have, written as $want"
				echo $(($(cat /tmp/churn.bad) + 1)) >/tmp/churn.bad
			fi
		fi
		k=$((k + 1))
		yes "churn round $k" | head -c 4194304 >/tmp/churn
		want=$(md5sum </tmp/churn | cut -d' ' -f1)
		echo "$k" >/tmp/churn.rounds
	done
) &
CHURNER=$!

while read -r cmd arg; do
	case $cmd in
	p) say "pong $arg up=$(cut -d' ' -f1 /proc/uptime) date=$(date +%s) disk_bad=$(cat /tmp/disk.bad)" \
		"churn_rounds=$(cat /tmp/churn.rounds) churn_bad=$(cat /tmp/churn.bad)" ;;
	m) say "blob $(md5sum </tmp/blob | cut -d' ' -f1)" ;;
	f) flags ;;
	n) ip link set eth0 up && ip addr add "$arg/24" dev eth0 && say "net eth0 $arg" || say "net failed" ;;
	s) break ;;
	*) say "unknown command '$cmd'" ;;
	esac
done
touch /tmp/stop
wait "$TICKER" "$CHURNER"
sync
say "stopped disk_bad=$(cat /tmp/disk.bad) churn_rounds=$(cat /tmp/churn.rounds) churn_bad=$(cat /tmp/churn.bad)"
poweroff -f
