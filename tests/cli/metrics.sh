#!/bin/sh
# Prometheus metrics: `[esproxy] metrics` serves /metrics over HTTP on
# loopback; the exposition passes the reference parser (Debian's
# python3-prometheus-client); counters move with what happens (IKE sends,
# ICMP-refused IKE, accepted sessions); `esproxy status --prometheus` gives
# the same families; bad requests get 400/404/405/408/431 and the endpoint
# keeps answering; a connection flood is capped; a busy port fails the start.
# Runs once with build/esproxy, then again with the ASan+UBSan build.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
PROM="/usr/bin/python3 $ROOT/tests/lab/prom_check.py"
N=${METRICS_LABEL:-metrics}     # the second pass runs the ASan build
PORT=19464
URL=http://127.0.0.1:$PORT/metrics

printf 'psk-never-in-metrics-0123456789\n' >"$T/psk"
cat >"$T/fe.ini" <<INI
[esproxy]
role = frontend
control = $T/control.sock
metrics = 127.0.0.1:$PORT

[tunnel main]
local = 127.0.0.1
peer = 127.0.0.2
udp_port = 14701
retransmit_ms = 100
local_id = fe.test
peer_id = mail.test
psk_file = $T/psk

[listen imap]
address = 127.0.0.1:11431
protocol = imap
INI

"$ESPROXY" run -c "$T/fe.ini" 2>"$T/log" &
pid=$!
i=0
while ! curl -s -o /dev/null "$URL" && [ $i -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
if ! grep -q "event=started .* metrics=127.0.0.1:$PORT" "$T/log"; then
    fail "$N: start" "$(cat "$T/log")"
    finish
fi
pass "$N: start logs the endpoint"

# a client connection to the IMAP listener is counted as accepted
python3 - 11431 <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.recv(512)
s.close()
PY
sleep 0.3      # the IKE_SA_INIT to 127.0.0.2 (nothing listens) is retransmitted

curl -s -D "$T/hdr" "$URL" >"$T/m1"
grep -q "^HTTP/1.1 200 OK" "$T/hdr" && grep -qi "^Content-Type: text/plain; version=0.0.4" "$T/hdr" &&
    pass "$N: GET /metrics 200 text/plain; version=0.0.4" || fail "$N: GET" "$(cat "$T/hdr")"
if $PROM <"$T/m1" >"$T/s1"; then
    pass "$N: exposition passes the prometheus_client parser ($(wc -l <"$T/s1") samples)"
else
    fail "$N: parser" "$(cat "$T/s1")"
fi
has() { grep -qxF "$1" "$T/s1" || { fail "$N: $2" "no '$1' in: $(grep "${1%%[{ ]*}" "$T/s1" | head -5)"; return 1; }; }
has 'esproxy_build_info{role="frontend",version="'"$("$ESPROXY" version | sed 's/^esproxy //')"'"} 1' "build info" &&
    pass "$N: build info names version and role"
has 'esproxy_tunnel_up{tunnel="main"} 0' "tunnel down" &&
    has 'esproxy_tunnel_state{state="connecting",tunnel="main"} 1' "connecting" &&
    pass "$N: tunnel without a peer is not up, state connecting"
has 'esproxy_tunnel_hints_ignored_total{tunnel="main"} 0' "hints ignored" &&
    pass "$N: unauthenticated hints ignored are counted (none yet)"
has 'esproxy_sessions_accepted_total{protocol="imap"} 1' "accepted" &&
    has 'esproxy_sessions_accepted_total{protocol="pop3"} 0' "pop3 none" &&
    pass "$N: the one IMAP connection is counted as accepted"
out=$(awk '$1 ~ /^esproxy_ike_messages_total.*direction="out"/ { print $2 }' "$T/s1")
rtx=$(awk '$1 == "esproxy_ike_retransmits_total" { print $2 }' "$T/s1")
[ "${out:-0}" -ge 2 ] && [ "${rtx:-0}" -ge 1 ] && [ $((out - rtx)) -eq 1 ] &&
    pass "$N: IKE counters move ($out sent, $rtx of them retransmissions)" ||
    fail "$N: IKE counters" "out=$out retransmits=$rtx"
# nothing listens at 127.0.0.2: the kernel's port unreachable comes back
grep -q "event=ike_request_refused tunnel=main" "$T/log" &&
    pass "$N: ICMP-refused IKE_SA_INIT is resent without backoff (event=ike_request_refused)" ||
    fail "$N: ICMP refusal" "$(grep ike_ "$T/log" | head -3)"
grep -q "psk-never-in-metrics" "$T/m1" && fail "$N: secrets" "the PSK appears" || pass "$N: no secret in the exposition"

# the control socket gives the same families
"$ESPROXY" status --prometheus -s "$T/control.sock" | $PROM >"$T/s2" &&
    [ "$(sed 's/[{ ].*//' "$T/s1" | sort -u)" = "$(sed 's/[{ ].*//' "$T/s2" | sort -u)" ] &&
    pass "$N: esproxy status --prometheus gives the same families" ||
    fail "$N: status --prometheus" "$(head -3 "$T/s2")"

# HEAD, other paths, other methods, garbage, an overlong head, a silent client
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
[ "$(code -I "$URL")" = 200 ] && pass "$N: HEAD /metrics 200" || fail "$N: HEAD" "$(code -I "$URL")"
[ "$(code "http://127.0.0.1:$PORT/")" = 404 ] && [ "$(code "$URL?x=1")" = 200 ] &&
    pass "$N: / is 404, /metrics?query is 200" || fail "$N: paths" "$(code "http://127.0.0.1:$PORT/")"
[ "$(code -X POST -d x "$URL")" = 405 ] && pass "$N: POST is 405" || fail "$N: POST" "$(code -X POST "$URL")"
raw() {   # raw BYTES-AS-PRINTF [wait]: the status line the server answers with
    python3 - "$PORT" "$1" "${2:-0}" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError:
    pass
print(data.split(b"\r\n")[0].decode("latin-1", "replace"))
PY
}
[ "$(raw 'hello\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] &&
    [ "$(raw 'GET /metrics HTTP/2.0\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] &&
    [ "$(raw 'GET metrics HTTP/1.1\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] &&
    [ "$(raw 'GET /metrics\x00 HTTP/1.1\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] &&
    pass "$N: malformed request lines and NUL get 400" || fail "$N: 400" "$(raw 'hello\r\n\r\n')"
[ "$(raw "GET /metrics HTTP/1.1\r\nX: $(head -c 5000 /dev/zero | tr '\0' a)\r\n\r\n")" = \
    "HTTP/1.1 431 Request Header Fields Too Large" ] && pass "$N: a head over 4 KiB gets 431" ||
    fail "$N: 431" "no 431"
t0=$(now_ms)
[ "$(raw 'GET /metrics HTTP/1.1\r\n')" = "HTTP/1.1 408 Request Timeout" ] && t=$(( $(now_ms) - t0 )) &&
    [ "$t" -ge 4500 ] && [ "$t" -le 7000 ] && pass "$N: an unfinished head gets 408 after 5 s ($t ms)" ||
    fail "$N: 408" "after $(( $(now_ms) - t0 )) ms"

# 40 silent connections: at most 32 are kept, the rest closed at once;
# afterwards the endpoint answers again
python3 - "$PORT" >"$T/flood" <<'PY'
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) for _ in range(40)]
time.sleep(0.3)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
print(closed)
for s in socks:
    s.close()
PY
[ "$(cat "$T/flood")" -ge 8 ] && pass "$N: 40 idle connections, $(cat "$T/flood") closed at accept (cap 32)" ||
    fail "$N: connection cap" "$(cat "$T/flood") closed"
sleep 0.2
[ "$(code "$URL")" = 200 ] && pass "$N: answers after the flood" || fail "$N: after the flood" "no 200"
kill -0 "$pid" 2>/dev/null && pass "$N: esproxy still running after bad requests" || fail "$N: alive" "exited"

# a second instance with the metrics port taken fails to start, clearly
sed -e "s|$T/control.sock|$T/control2.sock|" -e "s|11431|11432|" -e "s|14701|14702|" "$T/fe.ini" >"$T/fe2.ini"
"$ESPROXY" run -c "$T/fe2.ini" 2>"$T/log2"; rc=$?
[ "$rc" -eq 1 ] && grep -q "event=metrics_failed address=127.0.0.1:$PORT error=address already in use" "$T/log2" &&
    pass "$N: port in use fails the start (exit 1, event=metrics_failed)" || fail "$N: port in use" "exit $rc: $(cat "$T/log2")"

kill -TERM "$pid"
wait "$pid"; rc=$?
pid=
[ "$rc" -eq 0 ] && ! curl -s -o /dev/null "$URL" && pass "$N: endpoint gone after a clean stop" ||
    fail "$N: stop" "exit $rc"
if [ -z "${METRICS_LABEL:-}" ]; then
    rm -f "$T"/*
    METRICS_LABEL="metrics under ASan" ESPROXY=$ROOT/build/asan/esproxy sh "$0" || failures=$((failures + 1))
fi
finish
