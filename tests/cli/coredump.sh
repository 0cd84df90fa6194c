#!/bin/sh
# Core dumps hold keys and passwords: `esproxy run` makes itself
# non-dumpable (PR_SET_DUMPABLE 0, seen as /proc/PID owned by root for a
# process of another user) with a core size limit of 0, so a SIGSEGV leaves
# no core file even where the shell allows them; `[esproxy]
# debug_core_dumps = yes` brings them back (the same signal then leaves one).
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
chmod 755 "$T"
mkdir "$T/run" && chown nobody "$T/run"
pattern=$(cat /proc/sys/kernel/core_pattern)

conf() {
    FE_ESPROXY_LINES="debug_core_dumps = $1" fe_conf "$T/fe.ini" "$T/run/control.sock" 14748 \
        "[listen imap]" "address = 127.0.0.1:11543" "protocol = imap"
}

# start: as nobody in $T/run, with the shell allowing core files
start() {
    rm -f "$T/run/control.sock" "$T"/run/core*
    (cd "$T/run" && ulimit -c unlimited && exec setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$ESPROXY" run -c "$T/fe.ini" 2>"$T/log") &
    pid=$!
    wait_socket "$T/run/control.sock"
}

# crash: SIGSEGV, then the exit status and any core file
crash() {
    kill -SEGV "$pid"; wait "$pid"; rc=$?; pid=
    sleep 0.2
    cores=$(ls "$T/run" | grep -c '^core')
}

conf no
start
owner=$(stat -c %U "/proc/$pid/status")
limit=$(awk '/^Max core file size/ {print $5}' "/proc/$pid/limits")
[ "$owner" = root ] && pass "not dumpable by default (/proc/PID owned by $owner, the process runs as nobody)" \
    || fail "not dumpable by default" "/proc/$pid owned by $owner"
[ "$limit" = 0 ] && pass "core size limit 0 by default (the shell allowed unlimited)" \
    || fail "core size limit" "$limit"
crash
[ "$rc" -eq 139 ] && [ "$cores" -eq 0 ] && pass "SIGSEGV: exit $rc, no core file (core_pattern '$pattern')" \
    || fail "no core file" "exit $rc, $cores core files: $(ls "$T/run")"

conf yes
start
owner=$(stat -c %U "/proc/$pid/status")
[ "$owner" = nobody ] && pass "debug_core_dumps = yes: dumpable (/proc/PID owned by $owner)" \
    || fail "debug_core_dumps = yes dumpable" "/proc/$pid owned by $owner"
crash
case $pattern in
'|'*) pass "debug_core_dumps = yes: exit $rc (core_pattern pipes to '$pattern': no file to look for)" ;;
*) [ "$cores" -ge 1 ] && pass "debug_core_dumps = yes: SIGSEGV leaves a core file (exit $rc)" \
    || fail "debug_core_dumps = yes core" "exit $rc, none in $T/run" ;;
esac
finish
