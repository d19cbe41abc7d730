#!/usr/bin/env bash
# Install everything Ember needs to build and test on Debian 12, as root.
# Idempotent: does nothing when the packages are already there.
set -euo pipefail
pkgs=(gcc make pkg-config libjson-c-dev libseccomp-dev liburing-dev libcmocka-dev acpica-tools
      libzstd-dev zlib1g-dev libisal-dev clang binutils busybox-static cpio iproute2 python3 qemu-system-x86
      libclang-rt-14-dev llvm-14 valgrind e2fsprogs strace file procps)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
