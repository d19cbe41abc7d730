#!/usr/bin/env bash
# Live migration, snapshot and restore, Ember against QEMU 7.2 in the same
# run (bench/migration.py has the details of what is measured and how):
#   bench/migration.sh            quick: 1 GiB at 0, 100 and 800 MB/s random,
#                                 then snapshot/restore (about 5 minutes)
#   bench/migration.sh --full     the matrix: 1 and 4 GiB x 0/100/400/800 MB/s
#                                 x random/sequential (about an hour)
#   --sizes/--rates/--patterns/--vmms pick a subset (--help); QEMU_MEMFD=1
#   puts QEMU's guest RAM on a memfd, as Ember's is
# Each row: Ember with the dirty bitmap and the dirty ring, QEMU with its
# bitmap and -accel kvm,dirty-ring-size=4096, the same dirtyload guest
# kernel (QEMU boots it through its PVH note). Tables to stdout and
# build/bench/migration.md, raw figures in build/bench/migration.tsv.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER=${EMBER:-$ROOT/build/ember}
[ -w /dev/kvm ] || { echo "bench/migration.sh: needs /dev/kvm"; exit 1; }
[ -x "$EMBER" ] && [ -f "$ROOT/build/guest/dirtyload.elf" ] || { echo "bench/migration.sh: make all first"; exit 1; }
exec python3 "$ROOT/bench/migration.py" "$@"
