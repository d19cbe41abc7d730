#!/usr/bin/env bash
# tools/kvm-kind.sh: prints what this machine's /dev/kvm is: vmx or svm
# (hardware virtualization), pvm (kvm_pvm: no hardware virtualization,
# guest kernel code emulated) or none (no usable /dev/kvm). Sourced, it
# defines kvm_kind.
kvm_kind() {
	if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then echo none
	elif [ -d /sys/module/kvm_pvm ]; then echo pvm
	elif [ -d /sys/module/kvm_intel ]; then echo vmx
	elif [ -d /sys/module/kvm_amd ]; then echo svm
	elif grep -qw vmx /proc/cpuinfo; then echo vmx
	elif grep -qw svm /proc/cpuinfo; then echo svm
	else echo none; fi
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then kvm_kind; fi
