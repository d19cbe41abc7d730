#!/usr/bin/env bash
# tools/linux/build.sh [OUTDIR]   (OUTDIR defaults to build/linux)
#
# Builds a Linux guest for Ember out of Debian's own packages:
#   OUTDIR/bzImage            the Debian cloud kernel, as shipped (vmlinuz)
#   OUTDIR/vmlinux            the same kernel as an uncompressed ELF file
#   OUTDIR/initramfs.cpio.gz  busybox-static + the virtio modules + /init
#   OUTDIR/modules/           the virtio modules (uncompressed) and their
#                             load order (modules/order)
#   OUTDIR/kernel.txt         which package, version and compression
#
# The kernel is the package that linux-image-cloud-amd64 currently depends on;
# it and busybox-static are fetched with `apt-get download` into
# build/linux/cache and are not fetched again while they are there. Nothing
# is installed: the packages are unpacked with `dpkg-deb -x` into a scratch
# directory. Outputs newer than their inputs are not rebuilt, so a second run
# takes well under a second. The paths produced are printed on standard
# output, progress on standard error.
#
# Exit status: 0 done; 3 the package archive could not be reached and nothing
# usable is cached (tests skip on that); 1 anything else.
#
# The /init in the initramfs prints "EMBER-INIT: ..." lines to the console
# (started, cpus=N, memtotal=N kB, loaded/failed/builtin MODULE, pci ..., virtio
# ...); it runs /ember-test.sh when a test's second cpio archive adds one
# (tests/integration/lib.sh, linux_initrd_with); with ember.balloon=MIB it fills MIB of tmpfs, frees it and waits 8 s
# (balloon touched/freeing/freed/done); with ember.test=1 on the kernel
# command line it then powers off,
# otherwise it starts a shell on the console.
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/build/linux}
CACHE=$ROOT/build/linux/cache
KERNEL_META=linux-image-cloud-amd64
BUSYBOX_PKG=busybox-static
# Modules /init loads, in this order after their dependencies.
WANTED=(virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
	virtio_blk failover net_failover virtio_net virtio_rng virtio_balloon)
EXIT_OFFLINE=3

log() { echo "build-linux: $*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)
WORK=
MODS_NEW=
cleanup() {
	if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
	rm -rf "$OUT/.vmlinux.$$" "$OUT/.bzImage.$$" "$OUT/.initramfs.$$" ${MODS_NEW:+"$MODS_NEW"}
}
trap cleanup EXIT
scratch() {
	if [ -z "$WORK" ]; then WORK=$(mktemp -d "${TMPDIR:-/tmp}/ember-linux.XXXXXX"); fi
}

# ---------------------------------------------------------------------------
# Fetching packages

APT_OPTS=(-q -o Dpkg::Use-Pty=0)
# As root, apt-get download would try to drop to the _apt user, which cannot
# write into our cache, and warn: say up front that it runs as root.
if [ "$(id -u)" -eq 0 ]; then APT_OPTS+=(-o APT::Sandbox::User=root); fi

# What the package lists say, one `apt-cache show` per package (each call
# reads all the lists, ~0.3 s): SHOW[PKG] is its candidate's stanza.
declare -A SHOW=()
load_info() {  # PKG...
	local out p
	out=$(apt-cache show --no-all-versions "$@" 2>/dev/null) || true
	for p in "$@"; do
		SHOW[$p]=$(awk -v p="$p" '/^Package: / { cur = $2 } cur == p' <<<"$out")
	done
}
field() {  # PKG FIELD: that field of PKG's candidate version
	[ -n "${SHOW[$1]+set}" ] || load_info "$1"
	awk -v f="$2:" '$1 == f { sub(/^[^:]*: */, ""); print; exit }' <<<"${SHOW[$1]}"
}

UPDATED=0
apt_update() {  # at most once a run; fails when it cannot help
	[ "$UPDATED" -eq 0 ] || return 1
	UPDATED=1
	log "refreshing package lists (apt-get update)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
	SHOW=()
}

# resolve META: "PKG VERSION" of what to download for META: for the kernel
# metapackage the versioned package it depends on, otherwise META itself.
# Nothing when the lists do not know it.
resolve() {
	local dep pkg ver
	if [ "$1" = "$KERNEL_META" ]; then
		dep=$(field "$1" Depends)   # linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
		dep=${dep%%,*}
		dep=${dep%%|*}
		pkg=$(awk '{ print $1 }' <<<"$dep")
		ver=$(sed -n 's/.*(= *\([^)]*\)).*/\1/p' <<<"$dep")
		case $pkg in linux-image-*) ;; *) return 0 ;; esac
		[ -n "$ver" ] || ver=$(field "$pkg" Version)
	else
		pkg=$1
		ver=$(field "$1" Version)
	fi
	if [ -n "$pkg" ] && [ -n "$ver" ]; then echo "$pkg $ver"; fi
}
newest() {  # PATTERN: the newest-versioned cached .deb matching PATTERN
	local f
	f=$(find "$CACHE" -maxdepth 1 -name "${1//:/%3a}" | sort -V | tail -n 1)
	[ -n "$f" ] && echo "$f"
}
download() {  # PKG VERSION: apt-get download into the cache
	local d
	d=$(mktemp -d "$CACHE/.dl.XXXXXX")
	if (cd "$d" && apt-get "${APT_OPTS[@]}" download "$1=$2" >&2); then
		touch "$d"/*.deb   # mtime = now, so outputs built before are stale
		mv "$d"/*.deb "$CACHE/"
		rm -rf "$d"
		return 0
	fi
	rm -rf "$d"
	return 1
}
# fetch META GLOB: sets FETCHED to the .deb for META: the cached one when the
# current version is cached, else downloaded (older ones matching GLOB are
# then removed). When the archive cannot be reached, the newest cached .deb
# matching GLOB. Fails when there is none.
FETCHED=
fetch() {
	local meta=$1 glob=$2 pv pkg ver f attempt
	for attempt in 1 2; do
		pv=$(resolve "$meta")
		if [ -n "$pv" ]; then
			pkg=${pv% *}
			ver=${pv#* }
			if FETCHED=$(newest "${pkg}_${ver}_*.deb"); then return 0; fi
			log "downloading $pkg $ver"
			if download "$pkg" "$ver" && FETCHED=$(newest "${pkg}_${ver}_*.deb"); then
				find "$CACHE" -maxdepth 1 -name "$glob" ! -path "$FETCHED" -delete
				return 0
			fi
		fi
		# Lists missing, stale (the version is gone from the archive) or
		# never fetched: refresh them once and try again.
		if [ "$attempt" -eq 2 ] || ! apt_update; then break; fi
	done
	if f=$(newest "$glob"); then
		log "cannot get the current $meta; using the cached $(basename "$f")"
		FETCHED=$f
		return 0
	fi
	return 1
}

# need_tool TOOL PKG: make TOOL runnable, unpacking PKG from the archive into
# the cache when the host lacks it (e.g. lz4 for an lz4-compressed kernel).
need_tool() {
	local tool=$1 pkg=$2 dir
	command -v "$tool" >/dev/null 2>&1 && return 0
	dir=$CACHE/tools/$pkg
	if [ ! -x "$dir/usr/bin/$tool" ]; then
		fetch "$pkg" "${pkg}_*.deb" || die "$tool is needed and $pkg cannot be fetched"
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$FETCHED" "$dir"
	fi
	PATH=$dir/usr/bin:$dir/bin:$PATH
	command -v "$tool" >/dev/null 2>&1 || die "$pkg does not provide $tool"
}
tool_pkg() {
	case $1 in
	lz4) echo lz4 ;; zstd) echo zstd ;; xz) echo xz-utils ;;
	lzop) echo lzop ;; bzip2) echo bzip2 ;; gzip) echo gzip ;;
	*) return 1 ;;
	esac
}

# Where there is no apt (the nested test host, which gets build/linux
# packed in by tools/testhost/run), what was built is what there is.
if ! command -v apt-get >/dev/null 2>&1 && [ -f "$OUT/.inputs" ] && [ -f "$OUT/kernel.txt" ]; then
	log "no apt-get here: using what is built ($(head -n 1 "$OUT/kernel.txt"))"
	for p in bzImage vmlinux initramfs.cpio.gz modules kernel.txt; do echo "$OUT/$p"; done
	exit 0
fi
for t in apt-get apt-cache dpkg-deb cpio gzip readelf objcopy; do
	command -v "$t" >/dev/null 2>&1 || die "$t not found (run tools/install-deps.sh)"
done

load_info "$KERNEL_META" "$BUSYBOX_PKG"
if ! fetch "$KERNEL_META" 'linux-image-*-cloud-amd64_*.deb'; then
	log "error: cannot reach the package archive for $KERNEL_META and nothing is cached"
	exit "$EXIT_OFFLINE"
fi
KDEB=$FETCHED
if ! fetch "$BUSYBOX_PKG" "${BUSYBOX_PKG}_*.deb"; then
	log "error: cannot reach the package archive for $BUSYBOX_PKG and nothing is cached"
	exit "$EXIT_OFFLINE"
fi
BDEB=$FETCHED

# ---------------------------------------------------------------------------
# Up to date?

STAMP=$OUT/.inputs
STAMP_TEXT="$(basename "$KDEB") $(basename "$BDEB")"
stale() {  # OUTPUT INPUT...: OUTPUT is missing or older than an input
	local o=$1 i
	shift
	[ -e "$o" ] || return 0
	if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$STAMP_TEXT" ]; then return 0; fi
	for i in "$@"; do [ "$o" -nt "$i" ] || return 0; done
	return 1
}
SELF=$HERE/build.sh
EXTRACT=$HERE/extract-vmlinux.sh
need_kernel=0 need_vmlinux=0 need_initramfs=0
stale "$OUT/bzImage" "$KDEB" && need_kernel=1
stale "$OUT/kernel.txt" "$KDEB" "$SELF" "$EXTRACT" && need_kernel=1
stale "$OUT/vmlinux" "$KDEB" "$EXTRACT" && need_vmlinux=1
stale "$OUT/initramfs.cpio.gz" "$KDEB" "$BDEB" "$SELF" && need_initramfs=1
stale "$OUT/modules/order" "$KDEB" "$SELF" && need_initramfs=1

print_outputs() {
	local p
	for p in bzImage vmlinux initramfs.cpio.gz modules kernel.txt; do echo "$OUT/$p"; done
}
if [ $((need_kernel + need_vmlinux + need_initramfs)) -eq 0 ]; then
	log "up to date: $(head -n 1 "$OUT/kernel.txt")"
	print_outputs
	exit 0
fi

# ---------------------------------------------------------------------------
# Unpack the kernel

scratch
log "unpacking $(basename "$KDEB")"
mkdir -p "$WORK/kernel"
dpkg-deb -x "$KDEB" "$WORK/kernel"
VMLINUZ=$(find "$WORK/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[ -n "$VMLINUZ" ] || die "no /boot/vmlinuz-* in $(basename "$KDEB")"
KREL=${VMLINUZ##*/vmlinuz-}
MODDIR=$WORK/kernel/lib/modules/$KREL
[ -d "$MODDIR" ] || die "no /lib/modules/$KREL in $(basename "$KDEB")"
[ "$(dd if="$VMLINUZ" bs=1 skip=$((0x202)) count=4 2>/dev/null)" = HdrS ] ||
	die "$VMLINUZ has no bzImage header (HdrS at 0x202)"

# extract_vmlinux OUT: run extract-vmlinux.sh, fetching a missing
# decompressor once. Leaves its message in $WORK/extract.log.
extract_vmlinux() {
	local try missing pkg
	for try in 1 2; do
		if bash "$EXTRACT" "$VMLINUZ" "$1" 2>"$WORK/extract.log"; then return 0; fi
		missing=$(sed -n 's/.* but no \([a-z0-9]*\) on PATH$/\1/p' "$WORK/extract.log" | head -n 1)
		if [ "$try" -eq 2 ] || [ -z "$missing" ] || ! pkg=$(tool_pkg "$missing"); then break; fi
		log "fetching $pkg for $missing"
		need_tool "$missing" "$pkg"
	done
	cat "$WORK/extract.log" >&2
	die "could not extract vmlinux from $VMLINUZ"
}

if [ "$need_kernel" -eq 1 ] || [ "$need_vmlinux" -eq 1 ]; then
	extract_vmlinux "$WORK/vmlinux"
	COMPRESSION=$(sed -n 's/^extract-vmlinux: \([a-z0-9]*\) payload at offset \([0-9]*\)$/\1 at offset \2/p' "$WORK/extract.log")
	hdr=$(readelf -h "$WORK/vmlinux")
	grep -q 'Class:[[:space:]]*ELF64' <<<"$hdr" || die "vmlinux is not ELF64"
	grep -q 'Machine:[[:space:]]*Advanced Micro Devices X86-64' <<<"$hdr" || die "vmlinux is not x86-64"
	ENTRY=$(awk '/Entry point address:/ { print $4 }' <<<"$hdr")
	if [ -z "$ENTRY" ] || [ "$((ENTRY))" -eq 0 ]; then die "vmlinux has no entry point"; fi
	# Into OUT under a temporary name, then renamed: a reader never sees half
	# a file, and two builds at once do not trip over each other.
	mv "$WORK/vmlinux" "$OUT/.vmlinux.$$" && mv "$OUT/.vmlinux.$$" "$OUT/vmlinux"
	cp "$VMLINUZ" "$OUT/.bzImage.$$" && mv "$OUT/.bzImage.$$" "$OUT/bzImage"
	{
		echo "kernel $KREL ($(basename "$KDEB"))"
		echo "package $(dpkg-deb -f "$KDEB" Package) $(dpkg-deb -f "$KDEB" Version)"
		echo "bzImage protocol $(od -An -t x2 -j $((0x206)) -N 2 "$OUT/bzImage" | tr -d ' '), payload ${COMPRESSION:-?}"
		echo "vmlinux ELF64 x86-64, entry $ENTRY"
		echo "busybox $(dpkg-deb -f "$BDEB" Version)"
	} >"$OUT/kernel.txt"
	log "bzImage and vmlinux ($KREL, ${COMPRESSION:-?}, entry $ENTRY)"
fi

# ---------------------------------------------------------------------------
# Modules: the wanted ones and what they depend on, deps first.

if [ "$need_initramfs" -eq 1 ]; then
	declare -A MODPATH=() BUILTIN=() SEEN=() VISITING=()
	ORDER=()
	modname() {  # path -> module name ("virtio-rng.ko.xz" -> virtio_rng)
		local b=${1##*/}
		b=${b%%.ko*}
		echo "${b//-/_}"
	}
	while read -r rel; do   # (no $(modname) here: thousands of forks)
		b=${rel##*/}
		b=${b%%.ko*}
		MODPATH[${b//-/_}]=$rel
	done < <(cd "$MODDIR" && find kernel -name '*.ko' -o -name '*.ko.*')
	if [ -f "$MODDIR/modules.builtin" ]; then
		while read -r rel; do
			b=${rel##*/}
			b=${b%%.ko*}
			BUILTIN[${b//-/_}]=1
		done <"$MODDIR/modules.builtin"
	fi
	mkdir -p "$WORK/mods"

	unpack_module() {  # NAME: uncompressed copy in $WORK/mods/NAME.ko
		local src=$MODDIR/${MODPATH[$1]} dst=$WORK/mods/$1.ko
		case $src in
		*.ko) cp "$src" "$dst" ;;
		*.ko.xz) need_tool xz xz-utils; xz -dc "$src" >"$dst" ;;
		*.ko.zst) need_tool zstd zstd; zstd -q -dc "$src" >"$dst" ;;
		*.ko.gz) gzip -dc "$src" >"$dst" ;;
		*) die "unknown module format: $src" ;;
		esac
	}
	# deps NAME: what NAME needs loaded first. modules.dep when the package
	# has it (Debian's does not: depmod makes it at install time), otherwise
	# the module's own .modinfo "depends=" list, which depmod also trusts.
	deps() {
		local line d
		if [ -f "$MODDIR/modules.dep" ]; then
			line=$(grep -E "(^|/)$(basename "${MODPATH[$1]}"):" "$MODDIR/modules.dep" | head -n 1) || true
			for d in ${line#*:}; do modname "$d"; done
		else
			objcopy -O binary --only-section=.modinfo "$WORK/mods/$1.ko" "$WORK/modinfo"
			tr '\0' '\n' <"$WORK/modinfo" | sed -n 's/^depends=//p' | tr ',' '\n' | sed '/^$/d'
		fi
	}
	visit() {  # NAME: append NAME to ORDER after its dependencies
		local n=$1 d ds
		[ -z "${SEEN[$n]:-}" ] || return 0
		[ -z "${VISITING[$n]:-}" ] || die "module dependency cycle at $n"
		if [ -z "${MODPATH[$n]:-}" ]; then
			if [ -n "${BUILTIN[$n]:-}" ]; then
				log "module $n: built into the kernel"
				echo "$n" >>"$WORK/builtin"
			else
				log "module $n: not in this kernel, skipped"
			fi
			SEEN[$n]=1
			return 0
		fi
		VISITING[$n]=1
		unpack_module "$n"
		ds=$(deps "$n")   # on its own line, so that a failure stops us
		for d in $ds; do visit "$d"; done
		SEEN[$n]=1
		ORDER+=("$n")
	}
	: >"$WORK/builtin"
	for m in "${WANTED[@]}"; do visit "$m"; done
	[ ${#ORDER[@]} -gt 0 ] || die "none of the virtio modules found in $KREL"
	log "modules in load order: ${ORDER[*]}"

	MODS_NEW=$(mktemp -d "$OUT/.modules.XXXXXX")
	chmod 755 "$MODS_NEW"
	for m in "${ORDER[@]}"; do cp "$WORK/mods/$m.ko" "$MODS_NEW/"; done
	printf '%s\n' "${ORDER[@]}" >"$MODS_NEW/order"
	cp "$WORK/builtin" "$MODS_NEW/builtin"

	# -----------------------------------------------------------------------
	# The initramfs

	R=$WORK/initramfs
	mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,lib/modules/ember}
	dpkg-deb -x "$BDEB" "$WORK/busybox"
	install -m 755 "$WORK/busybox/bin/busybox" "$R/bin/busybox"
	"$R/bin/busybox" --list-full | while read -r applet; do
		case $applet in linuxrc | bin/busybox | "") continue ;; esac
		mkdir -p "$R/$(dirname "$applet")"
		ln -sf /bin/busybox "$R/$applet"
	done
	cp "$MODS_NEW"/* "$R/lib/modules/ember/"
	echo "$KREL" >"$R/etc/ember-kernel"

	cat >"$R/init" <<'INIT'
#!/bin/sh
# /init of Ember's test initramfs (made by tools/linux/build.sh).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
say() { echo "EMBER-INIT: $*"; }
say started
say "kernel=$(uname -r)"
say "cpus=$(nproc)"
say "memtotal=$(awk '/^MemTotal:/ { print $2 " " $3 }' /proc/meminfo)"
M=/lib/modules/ember
while read -r name; do
	[ -n "$name" ] || continue
	if err=$(insmod "$M/$name.ko" 2>&1); then
		say "loaded $name"
	else
		say "failed $name: $err"
	fi
done <"$M/order"
while read -r name; do
	[ -n "$name" ] && say "builtin $name"
done <"$M/builtin"
for d in /sys/bus/pci/devices/*; do
	[ -r "$d/vendor" ] || continue
	say "pci ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") class=$(cat "$d/class")"
done
for d in /sys/bus/virtio/devices/*; do
	[ -r "$d/device" ] || continue
	say "virtio ${d##*/} vendor=$(cat "$d/vendor") device=$(cat "$d/device")"
done
# A test's own guest side: a script at /ember-test.sh, which the test
# adds as a second cpio archive after this one (an initrd may be several
# archives one after the other; the kernel unpacks them all). Its lines
# go to the console like these.
if [ -x /ember-test.sh ]; then
	say "test script starting"
	/ember-test.sh
	say "test script exited $?"
fi
# ember.balloon=MIB (test_balloon.sh): fill MIB of tmpfs, free it and
# give free page reporting (virtio_balloon) time; the host watches its side.
B=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^ember\.balloon=\([0-9][0-9]*\)$/\1/p')
if [ -n "$B" ]; then
	mkdir -p /tmp/balloon
	mount -t tmpfs -o size=$((B + 16))m tmpfs /tmp/balloon
	dd if=/dev/zero of=/tmp/balloon/fill bs=1M count="$B" 2>/dev/null
	say "balloon touched $B MiB, memfree=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo) kB"
	say "balloon freeing"
	rm -f /tmp/balloon/fill
	say "balloon freed"
	sleep 8
	say "balloon done, memfree=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo) kB"
fi
case " $(cat /proc/cmdline) " in
*" ember.test=1 "*)
	say "powering off"
	poweroff -f
	sleep 1
	say "poweroff failed; rebooting"
	reboot -f
	;;
esac
say "starting a shell on the console"
while :; do
	setsid cttyhack sh || sh
	say "shell exited; starting another"
done
INIT
	chmod 755 "$R/init"

	# Same bytes for the same inputs: fixed timestamps, owner root.
	find "$R" -exec touch -h -d @0 {} +

	# newc_entry NAME MODE MAJOR MINOR NLINK INO: a newc header with no data.
	# Used for /dev/console, which must exist before /init runs (the kernel
	# opens it for init's standard streams), without mknod on the host: a
	# second small archive after cpio's (the kernel reads them one after the
	# other; GNU cpio -t lists only the first).
	newc_entry() {
		local name=$1 mode=$2 maj=$3 min=$4 nlink=$5 ino=$6 size pad
		size=$((${#name} + 1))
		printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
			"$ino" "$mode" 0 0 "$nlink" 0 0 0 0 "$maj" "$min" "$size" 0
		printf '%s\0' "$name"
		pad=$(((4 - (110 + size) % 4) % 4))
		head -c "$pad" /dev/zero
	}
	{
		(cd "$R" && find . -mindepth 1 | sed 's|^\./||' | sort |
			cpio -o -H newc -R 0:0 --reproducible --quiet)
		newc_entry dev/console $((8#020600)) 5 1 1 $((0xE0000001))
		newc_entry 'TRAILER!!!' 0 0 0 1 0
	} | gzip -9 -n >"$OUT/.initramfs.$$"
	mv "$OUT/.initramfs.$$" "$OUT/initramfs.cpio.gz"
	rm -rf "$OUT/modules"
	mv "$MODS_NEW" "$OUT/modules"
	log "initramfs: $(find "$R" -mindepth 1 | wc -l) entries + /dev/console, $(stat -c %s "$OUT/initramfs.cpio.gz") bytes"
fi

echo "$STAMP_TEXT" >"$STAMP"
print_outputs
