#!/bin/sh
# The backend role against real dovecot and nginx, in the namespace lab
# (tests/lab/lib.sh). First the front-end side is tests/tools/fe_forward:
# real IKE and ESP, plain TCP in and out, no protocol handling. Real
# clients in the client namespace: curl (imap://, pop3://, http://) and
# python imaplib/poplib. Then the same with the backend running as
# `nobody` and PROXY protocol v2 (dovecot must log the real client
# address), and the SIGTERM drill: the front-end must see the DELETE
# before its liveness probe could have (dead_after). Finally parts 2 and 3 again with the real
# front-end (`esproxy run`, proxy_protocol = v2 in its [tunnel]) in place
# of fe_forward.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=bl$$
. "$ROOT/tests/lab/lib.sh"
# the front-end stand-in from the build ESPROXY_BIN comes from (ASan+UBSan:
# its log is scanned too; `make test` builds only the release tools)
FWD=$ROOT/build/rel/tools/fe_forward
if lab_san; then
    FWD=$ROOT/build/asan/tools/fe_forward
    [ -x "$FWD" ] || make -s -C "$ROOT" build/asan/tools/fe_forward >"$LAB/make.log" 2>&1
fi
trap lab_exit EXIT
chmod 755 "$LAB"

lab_net || { fail "lab network" "cannot create namespaces"; finish; }
lab_vip_add be1
lab_mail 20000

start_frontend() {  # extra fe_forward args
    lab_frontend_conf "$LAB/fe.ini"
    mkdir -p "$LAB/fe"
    # the redirect truncates in the child; without this the wait below can
    # read the last run's "tunnel up" and the check after it the empty file
    rm -f "$LAB/fe.out"
    lab_esproxy_log_new "$LAB/fe.err"
    ip netns exec "$(lab_ns fe)" "$FWD" -c "$LAB/fe.ini" -f 10.99.1.1:143=143 -f 10.99.1.1:110=110 \
        -f 10.99.1.1:80=80 "$@" >"$LAB/fe.out" 2>"$LAB/fe.err" &
    fe_pid=$!
    lab_track $fe_pid
    lab_esproxy_track $fe_pid
    # up to 15 s: on a busy machine the first IKE_SA_INIT can precede the
    # backend's socket and wait for its retransmission
    i=0; while ! grep -qs "^tunnel up" "$LAB/fe.out" && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    grep -qs "^tunnel up" "$LAB/fe.out"
}

sessions() {    # label
    msg="$LAB/mail/shared/$LAB_USER/Maildir/cur/1700000000.M1P1.lab:2,S"
    out=$(lab_client curl -s --max-time 10 http://10.99.1.1/health)
    [ "$out" = "ok be1" ] && pass "$1: curl http:// through the tunnel" || fail "$1: curl http" "got '$out'"
    lab_client curl -s --max-time 10 --user "$LAB_USER:$LAB_PASS" pop3://10.99.1.1/1 >"$LAB/pop.out"
    if cmp -s "$LAB/pop.out" "$msg"; then
        pass "$1: curl pop3:// RETR returns the message byte for byte"
    else
        fail "$1: curl pop3 RETR" "$(wc -c <"$LAB/pop.out") bytes vs $(wc -c <"$msg")"
    fi
    out=$(lab_client curl -s --max-time 10 --user "$LAB_USER:$LAB_PASS" 'imap://10.99.1.1/INBOX;UID=1' | head -c 200)
    echo "$out" | grep -q "Subject: lab message" && pass "$1: curl imap:// FETCH" || fail "$1: curl imap" "$out"
    out=$(lab_client python3 - 2>&1 <<'PY'
import imaplib, poplib
m = imaplib.IMAP4("10.99.1.1", 143, timeout=10)
m.login("alice", "secret123")
typ, data = m.select("INBOX")
assert typ == "OK" and int(data[0]) >= 1, data
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert b"lab message" in data[0][1], data
m.logout()
p = poplib.POP3("10.99.1.1", 110, timeout=10)
p.user("alice"); p.pass_("secret123")
count, size = p.stat()
assert count >= 1, count
resp, lines, octets = p.retr(1)
assert any(b"lab message" in l for l in lines)
p.quit()
print("python ok")
PY
)
    [ "$out" = "python ok" ] && pass "$1: python imaplib and poplib sessions" || fail "$1: python clients" "$out"
}

real_address() {    # label: dovecot and nginx saw the client's address from the PROXY v2 header
    grep -q "rip=10.99.1.2" "$LAB/be1/dovecot/dovecot.log" &&
        pass "$1: dovecot logs the real client address (rip=10.99.1.2) from the PROXY v2 header" ||
        fail "$1: dovecot client address" "$(grep -o 'rip=[0-9.]*' "$LAB/be1/dovecot/dovecot.log" | sort -u | tr '\n' ' ')"
    grep -q "^127.0.0.1 10.99.1.2 GET /health" "$LAB/be1/web/logs/access.log" &&
        pass "$1: nginx sees the real client address via proxy_protocol" ||
        fail "$1: nginx client address" "$(tail -n 2 "$LAB/be1/web/logs/access.log")"
}

# ---- 1: backend as root, no PROXY protocol ----
lab_node_start be1
start_frontend && pass "IKE SA up between fe_forward and the backend role" || fail "tunnel" "$(cat "$LAB/fe.err")"
sessions "root, no PROXY"

# a local service that is down resets the inner stream: a back-end error, not a tunnel failure
nginx_pid=$(cat "$LAB/be1/web/nginx.pid")
kill "$nginx_pid"; i=0; while kill -0 "$nginx_pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
t0=$(now_ms)
code=$(lab_client curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://10.99.1.1/health)
t1=$(now_ms)
if [ "$code" = 000 ] && [ $((t1 - t0)) -lt 2000 ] && ! grep -q "^tunnel down" "$LAB/fe.out"; then
    pass "service down: the client's connection is reset in $((t1 - t0)) ms and the tunnel stays up"
else
    fail "service down" "code=$code after $((t1 - t0)) ms; $(tail -n 2 "$LAB/fe.out")"
fi
grep -q "event=backend_service_unreachable port=80" "$LAB/be1/backend.log" && pass "backend logs the unreachable service" ||
    fail "backend log" "$(tail -n 3 "$LAB/be1/backend.log")"
out=$(lab_client curl -s --max-time 10 --user "$LAB_USER:$LAB_PASS" 'imap://10.99.1.1/INBOX;UID=1' | head -c 200)
echo "$out" | grep -q "Subject: lab message" && pass "service down: other services keep working through the same SA" ||
    fail "after service down" "$out"

# a node without the VIP binds it anyway (IP_FREEBIND), ready for keepalived
lab_backend_conf be2 none
lab_backend be2
if grep -q "event=started role=backend" "$LAB/be2/backend.log"; then
    pass "backend on a node without the VIP binds it in advance (IP_FREEBIND)"
else
    fail "freebind" "$(cat "$LAB/be2/backend.log")"
fi
# the backend process dies but the node lives: the kernel answers our ESP
# with ICMP port unreachable, which must reach liveness as a hint
kill -9 "$lab_backend_pid_be1"; wait "$lab_backend_pid_be1" 2>/dev/null
lab_client curl -s -o /dev/null --max-time 2 http://10.99.1.1/health
i=0; while ! grep -q "hint=icmp_unreach" "$LAB/fe.err" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
grep -q "hint=icmp_unreach" "$LAB/fe.err" && pass "ICMP port unreachable from a node whose backend died reaches liveness as a hint" ||
    fail "ICMP hint" "$(grep -E 'liveness|tunnel_state' "$LAB/fe.err" | tail -n 3)"
kill "$fe_pid"; wait "$fe_pid" 2>/dev/null

# ---- 2: backend as nobody, PROXY v2 to dovecot and nginx ----
lab_stop_all
lab_dovecot be1 yes
lab_nginx be1 proxy_protocol
lab_backend_conf be1 v2
lab_backend be1 nobody
t0=$(now_ms)
start_frontend --proxy-v2 && pass "nobody: IKE SA up" ||
    fail "nobody: tunnel" "after $(($(now_ms) - t0)) ms: $(cat "$LAB/fe.out" "$LAB/fe.err" "$LAB/be1/backend.log")"
user=$(ps -o user= -p "$lab_backend_pid_be1" 2>/dev/null | tr -d ' ')
[ "$user" = nobody ] && pass "backend runs as nobody, no capabilities" || fail "backend user" "runs as '$user'"
sessions "nobody, PROXY v2"
real_address "nobody, PROXY v2"

# ---- 3: graceful stop: DELETE reaches the front-end ----
# Bound: dead_after (lab default 300 ms). Without the DELETE the front-end
# could only find the node gone through its probe, which takes at least
# dead_after; the time itself is printed (tens of ms on a quiet machine).
DEAD=300
t0=$(now_ms)
kill -TERM "$lab_backend_pid_be1"
i=0; while ! grep -q "^tunnel down" "$LAB/fe.out" && [ $i -lt 100 ]; do sleep 0.01; i=$((i + 1)); done
t1=$(sed -n 's/^tunnel down at_ms=//p' "$LAB/fe.out" | head -n 1)
if [ -n "$t1" ] && [ $((t1 - t0)) -lt $DEAD ]; then
    pass "SIGTERM: the front-end saw the DELETE and dropped the SA $((t1 - t0)) ms after the signal (bound: dead_after $DEAD)"
else
    fail "SIGTERM DELETE" "t0=$t0 down=$t1 $(tail -n 3 "$LAB/fe.out")"
fi
wait "$lab_backend_pid_be1"; rc=$?
[ "$rc" -eq 0 ] && pass "backend exits 0 after SIGTERM" || fail "backend exit" "rc=$rc"
grep -q "event=tunnel_shutdown deletes_sent=1" "$LAB/be1/backend.log" && pass "backend sent an authenticated DELETE" ||
    fail "backend DELETE" "$(tail -n 5 "$LAB/be1/backend.log")"

# ---- 4: the same through the real front-end (esproxy run): nobody, PROXY v2, SIGTERM ----
lab_stop_all
for f in "$LAB/be1/dovecot/dovecot.log" "$LAB/be1/web/logs/access.log"; do [ -f "$f" ] && mv "$f" "$f.part2"; done
lab_dovecot be1 yes
lab_nginx be1 proxy_protocol
lab_backend_conf be1 v2
lab_backend be1 nobody
mkdir -p "$LAB/fe"
lab_frontend_conf "$LAB/fe/fe.ini"
sed -i 's/^\[tunnel main\]$/[tunnel main]\nproxy_protocol = v2/' "$LAB/fe/fe.ini"
lab_frontend_start "$LAB/fe/fe.ini" && pass "real front-end: IKE SA up with the backend running as nobody" ||
    fail "real front-end: tunnel" "$(tail -n 5 "$LAB/fe/fe.log")"
sessions "real front-end, nobody, PROXY v2"
real_address "real front-end, nobody, PROXY v2"
t0=$(now_ms)
kill -TERM "$lab_backend_pid_be1"
i=0; while ! grep -q "event=tunnel name=main event=down" "$LAB/fe/fe.log" && [ $i -lt 100 ]; do sleep 0.01; i=$((i + 1)); done
t1=$(grep -m 1 "event=tunnel name=main event=down" "$LAB/fe/fe.log" | python3 -c '
import datetime, sys
ts = sys.stdin.read().split()[0][3:]
print(round(datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))' 2>/dev/null)
if [ -n "$t1" ] && [ $((t1 - t0)) -lt $DEAD ] && grep -q "from=up to=down reason=delete" "$LAB/fe/fe.log"; then
    pass "real front-end: SIGTERM -> DELETE -> the front-end reports its SA gone $((t1 - t0)) ms after the signal (reason delete, bound: dead_after $DEAD)"
else
    fail "real front-end: SIGTERM DELETE" "t0=$t0 down=$t1 $(grep 'event=tunnel' "$LAB/fe/fe.log" | tail -n 3)"
fi
finish
