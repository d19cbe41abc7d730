#!/usr/bin/env bash
# Every benchmark in bench/ (each compares Ember with a peer in the same run).
# Benchmarks need a real /dev/kvm: timings from the nested test host (TCG)
# would say nothing, so without one this says so and measures nothing.
set -u
cd "$(dirname "$0")"
kind=$(bash ../tools/kvm-kind.sh)
if [ "$kind" = none ]; then
	echo "bench: this machine has no usable /dev/kvm; benchmarks run only on a real one (nothing measured)" >&2
	exit 1
fi
echo "# /dev/kvm: $kind$([ "$kind" = pvm ] && echo ' (kvm_pvm: guest kernel code is emulated; figures are for this backend)')"
rc=0
for b in ./*.sh; do
	[ "$b" = ./run.sh ] && continue
	echo "== $b"
	bash "$b" || rc=1
done
exit $rc
