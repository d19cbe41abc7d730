#!/usr/bin/env bash
# Every benchmark in bench/ (each compares Ember with a peer in the same run).
set -u
cd "$(dirname "$0")"
rc=0
for b in ./*.sh; do
	[ "$b" = ./run.sh ] && continue
	echo "== $b"
	bash "$b" || rc=1
done
exit $rc
