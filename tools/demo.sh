#!/usr/bin/env bash
# tools/demo.sh: `make run`. Boots the guest-kit demo (build/guest/hello.elf,
# 2 vCPUs, 128 MiB): on this machine's /dev/kvm where there is one, else
# inside the nested SVM test host (tools/testhost/), saying so. Exits with
# Ember's status: 0 when the demo powered off.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
source tools/kvm-kind.sh
DEMO=(build/ember run --kernel build/guest/hello.elf --memory 128M --cpus 2)
kind=$(kvm_kind)
if [ "$kind" != none ]; then
	exec "${DEMO[@]}"
fi
echo "make run: this machine has no usable /dev/kvm; booting the demo inside the nested SVM test host (tools/testhost, QEMU TCG: slower)"
bash tools/linux/build.sh >/dev/null || exit 1
exec tools/testhost/run --memory 1G -- "${DEMO[@]}"
