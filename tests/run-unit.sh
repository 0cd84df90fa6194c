#!/bin/sh
# Run cmocka unit test binaries; print their results and a closing count.
# Counts are also appended to $ESPROXY_TEST_COUNTS when set (run-all.sh).
set -u
passed=0 failed=0
for t in "$@"; do
    out=$(CMOCKA_MESSAGE_OUTPUT=stdout "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ] && [ -z "$f" ]; then
        echo "run-unit: $t exited $rc without a cmocka summary" >&2
        failed=$((failed + 1))
    fi
done
echo "unit: $passed passed, $failed failed"
[ -n "${ESPROXY_TEST_COUNTS:-}" ] && echo "$passed $failed" >>"$ESPROXY_TEST_COUNTS"
[ "$failed" -eq 0 ]
