#!/bin/sh
# The absolute pre-login deadline (`[listen] preauth_timeout_s`): a client
# that drips one byte every DRIP ms, far inside preauth_idle_s, is still
# closed at the deadline with the protocol's own error (POP3 -ERR, IMAP
# * BYE, HTTP 408 for a head that never completes) and a log line. The
# bounds come from the configured deadline: closed no earlier than it
# (minus 100 ms of timer rounding) and no later than twice it.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && sleep 0.3 && kill -9 "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

TIMEOUT_S=2
IDLE_S=30
DRIP_MS=250
listener() {   # NAME PORT PROTOCOL IDLE_S
    printf '[listen %s]\naddress = 127.0.0.1:%s\nprotocol = %s\npreauth_timeout_s = %s\npreauth_idle_s = %s\n\n' \
        "$1" "$2" "$3" "$TIMEOUT_S" "$4"
}
fe_conf "$T/fe.ini" "$T/control.sock" 14743 "$(listener pop3 11043 pop3 $IDLE_S)" "$(listener imap 11143 imap $IDLE_S)" \
    "$(listener http 18043 http $IDLE_S)" "$(listener http_idle 18143 http 1)"

"$ESPROXY" run -c "$T/fe.ini" >/dev/null 2>"$T/log" &
pid=$!
wait_socket "$T/control.sock" || { fail "frontend starts" "$(cat "$T/log")"; finish; }

# drip PORT PREFIX: prints "MS LINE | LINE..." (what the server sent) once
# it closes (MS from connect), or "open ..." after 3 x the deadline.
drip() {
    python3 - "$1" "$2" "$DRIP_MS" "$TIMEOUT_S" <<'PY'
import socket, sys, time
port, prefix, drip_ms, timeout_s = int(sys.argv[1]), sys.argv[2].encode().decode("unicode_escape"), int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port))
t0 = time.monotonic()
s.sendall(prefix.encode())
s.settimeout(drip_ms / 1000)
got = b""
ms = "open"
while time.monotonic() - t0 < 3 * timeout_s:
    try:
        d = s.recv(4096)
        if not d:
            ms = int((time.monotonic() - t0) * 1000)
            break
        got += d
        continue
    except socket.timeout:
        pass
    try:
        s.sendall(b"x")
    except OSError:
        ms = int((time.monotonic() - t0) * 1000)
        break
print(ms, " | ".join(l for l in got.decode(errors="replace").splitlines() if l.strip()) or "-")
PY
}

lo=$((TIMEOUT_S * 1000 - 100)) hi=$((2 * TIMEOUT_S * 1000))
check() {
    label=$1 out=$2 want=$3
    ms=${out%% *} said=${out#* }
    if [ "$ms" != open ] && [ "$ms" -ge "$lo" ] && [ "$ms" -le "$hi" ] && printf '%s' "$said" | grep -q "$want"; then
        pass "$label: drip-fed client closed after $ms ms, server said '$said' (deadline ${TIMEOUT_S} s, bounds $lo..$hi ms, one byte every $DRIP_MS ms, idle limit ${IDLE_S} s)"
    else
        fail "$label" "expected '$want' within $lo..$hi ms, got: $out"
    fi
}
check pop3 "$(drip 11043 'USER al')" '| -ERR [^|]*$'
check imap "$(drip 11143 'a1 LOGIN al')" '| \* BYE [^|]*$'
check http "$(drip 18043 'GET / HTTP/1.1\r\nHost: fe.test\r\nX-Drip: ')" '^HTTP/1.1 408 Request Timeout |'

# A partial head silent past preauth_idle_s (1 s here) re-armed the idle
# timer at its passed deadline, and libuv ran it again and again inside one
# timer phase: the whole frontend hung. Now it still answers, and the head
# gets its 408 at the deadline.
python3 -c 'import socket,sys,time
s = socket.create_connection(("127.0.0.1", 18143)); s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
s.settimeout(3 * int(sys.argv[1])); t0 = time.monotonic(); d = s.recv(100)
print(int((time.monotonic() - t0) * 1000), d.split(b"\r\n")[0].decode())' "$TIMEOUT_S" >"$T/idle_out" &
cl=$!
sleep 1.5
if timeout 5 "$ESPROXY" status -s "$T/control.sock" >/dev/null 2>&1; then
    pass "a silent partial HTTP head past preauth_idle_s (1 s) leaves the frontend answering"
else
    fail "frontend answers with a silent partial HTTP head" "status got no answer within 5 s"
fi
wait "$cl"
out=$(cat "$T/idle_out")
ms=${out%% *}
[ -n "$ms" ] && [ "$ms" -le "$hi" ] && [ "${out#* }" = "HTTP/1.1 408 Request Timeout" ] \
    && pass "the silent head got '${out#* }' after $ms ms (bound $hi)" || fail "silent head answered" "$out"

n=$(grep -c "event=session_preauth_timeout" "$T/log")
[ "$n" -eq 4 ] && pass "one log line per deadline ($n)" || fail "log lines" "$n: $(tail -n 5 "$T/log")"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" -eq 0 ] && ! grep -q "Sanitizer\|runtime error:" "$T/log" && pass "stops cleanly (exit $rc), no sanitizer report" \
    || fail "clean stop" "exit $rc: $(grep -A3 "Sanitizer\|runtime error:" "$T/log" | head -n 5)"
finish
