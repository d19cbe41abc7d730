#!/usr/bin/env bash
# Bounded libFuzzer runs of the virtio parsers (tests/fuzz/fuzz_*.c, built
# by `make fuzz` into build/fuzz/): the split-virtqueue walker and the
# virtio-blk request framing, from the seeds in tests/fuzz/corpus/NAME/.
# A crash, leak or sanitizer report fails the check.
source "$(dirname "$0")/lib.sh"
RUNS=${FUZZ_RUNS:-50000}

for name in fuzz_virtqueue fuzz_blk_request; do
	bin=$ROOT/build/fuzz/$name
	check="$name: $RUNS iterations without a finding"
	if [ ! -x "$bin" ]; then
		fail "$check" "$bin not built (make fuzz; needs clang)"
		continue
	fi
	mkdir -p "$TMP/$name"
	rc=0
	(cd "$TMP" && "$bin" -runs="$RUNS" -max_len=70000 -seed=1 "$TMP/$name" "$ROOT/tests/fuzz/corpus/$name") \
		>"$TMP/$name.log" 2>&1 || rc=$?
	if [ "$rc" = 0 ] && grep -q "^Done $RUNS runs" "$TMP/$name.log"; then
		pass "$check"
	else
		fail "$check" "exit $rc"; tail -n 30 "$TMP/$name.log" | sed 's/^/#   /'
	fi
done
