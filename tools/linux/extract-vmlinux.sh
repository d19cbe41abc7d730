#!/usr/bin/env bash
# extract-vmlinux.sh BZIMAGE [OUT]
#
# Gets the uncompressed ELF vmlinux back out of an x86 bzImage, the way the
# kernel's scripts/extract-vmlinux does: the protected-mode part of a bzImage
# is a small decompressor followed by the compressed kernel, which starts with
# the magic bytes of its compression format. We decompress it with the
# matching tool and keep the result only if `readelf -h` sees an ELF file.
#
# When the boot protocol header (2.08+) gives payload_offset/payload_length we
# try that exact byte range first; otherwise (or if it does not decompress) we
# scan the whole file for every known magic, like the kernel's script.
#
# Writes the ELF to OUT (default: standard output) and one line to standard
# error saying what it found, e.g. "extract-vmlinux: lz4 payload at offset N".
# Exits 1 when no ELF could be found.
set -euo pipefail
# Byte semantics everywhere: in a UTF-8 locale bash's `read` can swallow a
# newline that follows a stray lead byte of binary data.
export LC_ALL=C

prog=extract-vmlinux
die() { echo "$prog: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $0 BZIMAGE [OUT]"; fi
img=$1
out=${2:-}
[ -r "$img" ] || die "cannot read $img"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/extract-vmlinux.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Compression formats the x86 kernel can use, in the order the kernel's script
# tries them, with the magic bytes (hex) that start their stream.
formats=(gzip xz bzip2 lzma lzo lz4 zstd)
magic() {
	case $1 in
	gzip) echo 1f8b08 ;;
	xz) echo fd377a585a00 ;;
	bzip2) echo 425a68 ;;
	lzma) echo 5d000000 ;;
	lzo) echo 894c5a4f ;;
	lz4) echo 02214c18 ;;   # lz4 "legacy" frame, what the kernel uses
	zstd) echo 28b52ffd ;;
	esac
}
tool() {
	case $1 in
	gzip) echo gzip ;; xz | lzma) echo xz ;; bzip2) echo bzip2 ;;
	lzo) echo lzop ;; lz4) echo lz4 ;; zstd) echo zstd ;;
	esac
}
# decompress FORMAT: standard input to standard output. The kernel appends the
# uncompressed size after the stream, so most tools complain about trailing
# garbage: callers ignore the exit status and judge the output with readelf.
decompress() {
	case $1 in
	gzip) gzip -dc ;;
	xz) xz -dc ;;
	bzip2) bzip2 -dc ;;
	lzma) xz --format=lzma -dc ;;
	lzo) lzop -dc ;;
	lz4) lz4 -dc ;;
	zstd) zstd -dc ;;
	esac
}

# hex_at OFFSET COUNT: COUNT bytes of the image at OFFSET, as lowercase hex.
hex_at() {
	dd if="$img" iflag=skip_bytes,count_bytes skip="$1" count="$2" bs=4096 2>/dev/null |
		od -An -v -t x1 | tr -d ' \n'
}
# le OFFSET COUNT: little-endian unsigned integer of COUNT bytes at OFFSET.
le() {
	local hex v=0 i
	hex=$(hex_at "$1" "$2")
	[ ${#hex} -eq $(($2 * 2)) ] || { echo 0; return; }
	for ((i = $2 - 1; i >= 0; i--)); do v=$((v * 256 + 16#${hex:i*2:2})); done
	echo "$v"
}

is_elf() { readelf -h "$1" >/dev/null 2>&1; }

# try FORMAT OFFSET [LENGTH]: decompress the stream at OFFSET (LENGTH bytes,
# or to the end of the file) and keep it if it is an ELF file.
try() {
	local name=$1 off=$2 len=${3:-}
	if ! command -v "$(tool "$name")" >/dev/null 2>&1; then
		echo "$prog: $name payload at offset $off but no $(tool "$name") on PATH" >&2
		return 1
	fi
	if [ -n "$len" ]; then
		dd if="$img" iflag=skip_bytes,count_bytes skip="$off" count="$len" bs=1M 2>/dev/null |
			decompress "$name" >"$tmp/vmlinux" 2>/dev/null || true
	else
		tail -c +$((off + 1)) "$img" | decompress "$name" >"$tmp/vmlinux" 2>/dev/null || true
	fi
	if [ -s "$tmp/vmlinux" ] && is_elf "$tmp/vmlinux"; then
		echo "$prog: $name payload at offset $off" >&2
		return 0
	fi
	return 1
}

finish() {
	if [ -n "$out" ]; then
		mv "$tmp/vmlinux" "$out"
	else
		cat "$tmp/vmlinux"
	fi
	exit 0
}

# Already an ELF (someone passed a vmlinux): hand it back unchanged.
if is_elf "$img"; then
	cp "$img" "$tmp/vmlinux"
	echo "$prog: $img is already an ELF file" >&2
	finish
fi

# 1. The boot protocol header: "HdrS" at 0x202, protocol version at 0x206,
#    setup_sects at 0x1f1, payload_offset/payload_length at 0x248/0x24c
#    (2.08+), the offset counted from the protected-mode code, which follows
#    the (setup_sects + 1) 512-byte sectors of real-mode setup.
if [ "$(hex_at $((0x202)) 4)" = 48647253 ]; then
	version=$(le $((0x206)) 2)
	setup_sects=$(le $((0x1f1)) 1)
	[ "$setup_sects" -eq 0 ] && setup_sects=4
	if [ "$version" -ge $((0x208)) ]; then
		poff=$(($(le $((0x248)) 4) + (setup_sects + 1) * 512))
		plen=$(le $((0x24c)) 4)
		for name in "${formats[@]}"; do
			m=$(magic "$name")
			if [ "$(hex_at "$poff" $((${#m} / 2)))" = "$m" ]; then
				try "$name" "$poff" "$plen" && finish
				break
			fi
		done
	fi
fi

# 2. Scan the whole file for every magic, first match first.
for name in "${formats[@]}"; do
	m=$(magic "$name")
	pattern=""
	for ((i = 0; i < ${#m}; i += 2)); do pattern+="\\x${m:i:2}"; done
	while read -r off; do
		try "$name" "$off" && finish
	done < <({ grep -obUaP "$pattern" "$img" 2>/dev/null || true; } | cut -d: -f1)
done

die "no compressed ELF kernel found in $img"
