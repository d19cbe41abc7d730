#!/usr/bin/env bash
# The unit tests again under valgrind (memcheck), built without sanitizers
# (build/unit-plain/, `make unit`): every test passes with zero errors and
# no definite or indirect leak. First, that the harness can fail: a program
# with a use after free and a leak must be caught.
# test-host: none
source "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null; then
	skip "valgrind" "valgrind not installed (tools/install-deps.sh installs it)"
	exit 0
fi
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-fds=no)
export CMOCKA_MESSAGE_OUTPUT=TAP

cat >"$TMP/bad.c" <<'EOF'
#include <stdlib.h>
int main(void)
{
	char *volatile p = malloc(16);
	free(p);
	int r = p[3];          /* use after free */
	p = malloc(32);        /* leaked */
	p = NULL;
	return r & 0;
}
EOF
if ! ${CC:-cc} -O0 -g -o "$TMP/bad" "$TMP/bad.c" 2>"$TMP/cc.out"; then
	fail "valgrind: catches a use after free and a leak" "cannot compile the probe"
else
	rc=0; "${VG[@]}" "$TMP/bad" >"$TMP/bad.out" 2>&1 || rc=$?
	if [ $rc = 99 ] && grep -q 'Invalid read' "$TMP/bad.out" && grep -q 'definitely lost' "$TMP/bad.out"; then
		pass "valgrind: catches a use after free and a leak"
	else
		fail "valgrind: catches a use after free and a leak" "exit $rc"; sed 's/^/#   /' "$TMP/bad.out" | head
	fi
fi

found=0
for t in "$ROOT"/build/unit-plain/test_*; do
	[ -x "$t" ] || continue
	found=1
	name=valgrind:\ $(basename "$t")
	rc=0; "${VG[@]}" "$t" >"$TMP/vg.out" 2>&1 || rc=$?
	oks=$(grep -c '^ok ' "$TMP/vg.out")
	if [ $rc != 0 ] || grep -q '^not ok' "$TMP/vg.out" || [ "$oks" = 0 ]; then
		fail "$name" "exit $rc, $oks tests passed"; grep -v '^ok ' "$TMP/vg.out" | sed 's/^/#   /' | head -n 30
	else
		pass "$name ($oks tests, no errors)"
	fi
done
[ $found = 1 ] || fail "valgrind: unit tests" "build/unit-plain/ is empty (make unit)"
exit 0
