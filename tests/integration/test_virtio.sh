#!/usr/bin/env bash
# PCI + virtio devices driven from guest-kit kernels (tests/guest/kernels/
# blk.c, rng.c): the guest's own checks, then the host looks at the image
# file. Also the --disk/--rng/--net option errors.
source "$(dirname "$0")/lib.sh"

# bad_opt NAME PATTERN ARGS...: exit 2 with one matching error line.
bad_opt() {
	local name=$1 pattern=$2; shift 2
	local rc=0
	"$EMBER" run --kernel "$GUEST/hello.elf" "$@" </dev/null >"$TMP/out" 2>"$TMP/err" || rc=$?
	if [ "$rc" = 2 ] && [ "$(grep -c '^ember: error:' "$TMP/err")" = 1 ] &&
	   grep '^ember: error:' "$TMP/err" | grep -Eq -- "$pattern"; then
		pass "$name"
	else
		fail "$name" "exit $rc"; sed 's/^/#   /' "$TMP/err"
	fi
}
truncate -s 1M "$TMP/ok.img"
bad_opt "--disk missing image" "nope.img: No such file" --disk "$TMP/nope.img"
bad_opt "--disk unknown option" "unknown option 'fast'" --disk "$TMP/ok.img,fast"
bad_opt "--disk serial too long" "serial is longer than 20" --disk "$TMP/ok.img,serial=123456789012345678901"
truncate -s 1000 "$TMP/odd.img"
bad_opt "--disk size not whole sectors" "not a multiple of 512" --disk "$TMP/odd.img"
bad_opt "--net without tap" "no tap=NAME" --net mac=52:54:00:00:00:01
bad_opt "--net bad mac" "not a unicast MAC" --net tap=t0,mac=01:00:00:00:00:01

CHECKS=("blk guest checks" "blk: guest write is in the image" "blk: write-zeroes zeroed the image"
	"blk on tmpfs: write-zeroes zeroed the image"
	"blk readonly guest checks" "blk readonly: image unchanged" "rng guest checks"
	"hostile driver: every bad request fails or sets NEEDS_RESET, Ember keeps running")
require_kvm "${CHECKS[@]}"

show() { sed 's/^/#   /' "$1" | tail -n 30; }

# kit NAME OUT ARGS...: a test kernel must exit 1 (all ok) with a clean SUMMARY.
kit() {
	local name=$1 out=$2; shift 2
	run_vm "$out" 120 --memory 128M --debug-exit "$@"
	if [ "$RC" = 1 ] && grep -Eq '^SUMMARY: [0-9]+ tests, 0 failures' "$out"; then
		pass "$name"
	else
		fail "$name" "exit status $RC"; grep '^not ok' "$out" | sed 's/^/#   /'; show "$out"
	fi
}

# An 8 MiB image: sector 16 holds a pattern the guest must read, sectors
# 24-31 are 0xaa until the guest's write-zeroes.
mkimg() {
	rm -f "$1"; truncate -s 8M "$1"
	printf 'EMBER-HOST-PATTERN' | dd of="$1" bs=512 seek=16 conv=notrunc status=none
	head -c 4096 /dev/zero | tr '\0' '\252' | dd of="$1" bs=512 seek=24 conv=notrunc status=none
}

IMG=$TMP/disk.img
mkimg "$IMG"
kit "blk guest checks" "$TMP/blk.out" --kernel "$GUEST/blk.elf" --disk "$IMG,serial=EMBER-SERIAL-1" \
	--cmdline "sectors=16384 serial=EMBER-SERIAL-1"
if [ "$(dd if="$IMG" bs=512 skip=8 count=1 status=none | head -c 22)" = "EMBER-GUEST-WROTE-THIS" ]; then
	pass "blk: guest write is in the image"
else
	fail "blk: guest write is in the image" "sector 8 does not start with the guest's pattern"
fi
if [ "$(dd if="$IMG" bs=512 skip=24 count=8 status=none | tr -d '\0' | wc -c)" = 0 ]; then
	pass "blk: write-zeroes zeroed the image"
else
	fail "blk: write-zeroes zeroed the image" "sectors 24-31 are not all zero"
fi

# The same on an image on tmpfs, which has no FALLOC_FL_ZERO_RANGE: Ember
# punches a hole and allocates the range again. The tmpfs is mounted in a
# private mount namespace, so nothing outside it changes.
n="blk on tmpfs: write-zeroes zeroed the image"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	mkimg "$TMP/tmpfs.img"
	mkdir -p "$TMP/tmpfs"
	unshare -m --propagation private sh -c '
		mount -t tmpfs none "$1" || exit 125
		cp "$2" "$1/disk.img"
		timeout 120 "$3" run --memory 128M --debug-exit --kernel "$4" --disk "$1/disk.img,serial=T" \
			--cmdline "sectors=16384 serial=T" </dev/null >"$5" 2>&1
		echo $? >"$5.rc"
		cp "$1/disk.img" "$2"' sh "$TMP/tmpfs" "$TMP/tmpfs.img" "$EMBER" "$GUEST/blk.elf" "$TMP/tmpfs.out"
	if [ "$(cat "$TMP/tmpfs.out.rc" 2>/dev/null)" = 1 ] &&
	   grep -Eq '^SUMMARY: [0-9]+ tests, 0 failures' "$TMP/tmpfs.out" &&
	   [ "$(dd if="$TMP/tmpfs.img" bs=512 skip=24 count=8 status=none | tr -d '\0' | wc -c)" = 0 ]; then
		pass "$n"
	else
		fail "$n" "exit $(cat "$TMP/tmpfs.out.rc" 2>/dev/null)"; grep '^not ok' "$TMP/tmpfs.out" | sed 's/^/#   /'; tail -5 "$TMP/tmpfs.out"
	fi
else
	skip "$n" "needs root and unshare(1) to mount a private tmpfs"
fi

mkimg "$IMG"
sum_before=$(sha256sum <"$IMG")
chmod 0444 "$IMG"
kit "blk readonly guest checks" "$TMP/blkro.out" --kernel "$GUEST/blk.elf" --disk "$IMG,readonly,serial=RO" \
	--cmdline "sectors=16384 serial=RO ro"
expect_eq "blk readonly: image unchanged" "$(sha256sum <"$IMG")" "$sum_before"

kit "rng guest checks" "$TMP/rng.out" --kernel "$GUEST/rng.elf" --rng

# The hostile driver: every bad ring/chain/register/BAR case, on the
# sanitizer build (a stray access would abort it).
mkimg "$IMG"
chmod 0644 "$IMG"
kit "hostile driver: every bad request fails or sets NEEDS_RESET, Ember keeps running" "$TMP/bad.out" \
	--kernel "$GUEST/virtio_bad.elf" --disk "$IMG" --rng

# virtio-net: a namespace of our own with a tap in it (loopback traffic
# only: the guest talks to the host kernel's address on the tap).
NS=ember-test-$$
NET_CHECK="net: ARP and ICMP echo through a tap in a netns, MSI-X receive interrupt"
if ! ip netns add "$NS" 2>"$TMP/ns.err"; then
	skip "$NET_CHECK" "cannot create a network namespace: $(head -n1 "$TMP/ns.err")"
	skip "--net on a tap already in use: one error line, exit 2" "no network namespace"
else
	trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"' EXIT
	ip -n "$NS" tuntap add dev etap0 mode tap &&
	ip -n "$NS" addr add 10.99.0.1/24 dev etap0 &&
	ip -n "$NS" link set etap0 up
	RC=0
	timeout -k 5 120 ip netns exec "$NS" "$EMBER" run --kernel "$GUEST/net.elf" --memory 128M --debug-exit \
		--net tap=etap0,mac=52:54:00:12:34:56 \
		--cmdline "mac=52:54:00:12:34:56 ip=10.99.0.2 host=10.99.0.1" </dev/null >"$TMP/net.out" 2>&1 || RC=$?
	if [ "$RC" = 1 ] && grep -Eq '^SUMMARY: [0-9]+ tests, 0 failures' "$TMP/net.out"; then
		pass "$NET_CHECK"
	else
		fail "$NET_CHECK" "exit status $RC"; grep '^not ok' "$TMP/net.out" | sed 's/^/#   /'; show "$TMP/net.out"
	fi
	RC=0
	ip netns exec "$NS" "$EMBER" run --kernel "$GUEST/hello.elf" --memory 64M --net tap=etap0 --net tap=etap0 \
		</dev/null >"$TMP/out" 2>"$TMP/err" || RC=$?
	if [ "$RC" = 2 ] && grep -q '^ember: error: --net tap=etap0: .*busy' "$TMP/err"; then
		pass "--net on a tap already in use: one error line, exit 2"
	else
		fail "--net on a tap already in use: one error line, exit 2" "exit $RC"; sed 's/^/#   /' "$TMP/err"
	fi
	ip netns del "$NS"
fi
