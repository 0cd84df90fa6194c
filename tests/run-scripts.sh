#!/bin/sh
# Run every tests/<dir>/*.sh script (or the scripts named). A script prints
# one line per check, "PASS name" or "FAIL name: why", and exits non-zero if
# any check failed.
set -u
passed=0 failed=0
for dir in "$@"; do
    if [ -f "$dir" ]; then scripts=$dir; else scripts=$(ls "$dir"/*.sh 2>/dev/null); fi
    for s in $scripts; do
        echo "== $s"
        out=$(ESPROXY_ROOT=$(pwd) sh "$s" 2>&1)
        rc=$?
        printf '%s\n' "$out"
        p=$(printf '%s\n' "$out" | grep -c '^PASS ')
        f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "FAIL $s: exited $rc"
            f=1
        fi
        passed=$((passed + p)); failed=$((failed + f))
    done
done
echo "scripts: $passed passed, $failed failed"
[ -n "${ESPROXY_TEST_COUNTS:-}" ] && echo "$passed $failed" >>"$ESPROXY_TEST_COUNTS"
[ "$failed" -eq 0 ]
