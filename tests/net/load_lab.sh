#!/bin/sh
# `esproxy load` against real dovecot and nginx in the namespace lab, both
# directly (from the front-end's namespace to the node) and through the
# frontend: the counts it reports must match the servers' own logs
# (dovecot "Login:" lines, nginx access-log lines), credentials are used in
# turn, and every error kind is classified: auth (wrong password), closed
# (doveadm kick during IDLE), protocol (HTTP 404), connect (nothing
# listening), timeout (a listener that never greets), tls (a CA that did
# not sign the frontend's certificate). TLS sessions (implicit on 995/993/443,
# STARTTLS on 1110/1143) go to the frontend's TLS listeners, verified with
# the lab CA; the plain 110/143 listeners keep no certificate.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=ld$$
. "$ROOT/tests/lab/lib.sh"
mute_pid=
trap '[ -n "$mute_pid" ] && kill "$mute_pid" 2>/dev/null; lab_exit' EXIT
chmod 755 "$LAB"

lab_net || { fail "lab network" "cannot create namespaces"; finish; }
lab_vip_add be1
lab_mail 3000
for u in u1 u2 u3; do printf '%s:{PLAIN}pw-%s\n' "$u" "$u" >>"$LAB/mail/users"; done
printf '# lab users\nu1:pw-u1\nu2:pw-u2\nu3:pw-u3\n' >"$LAB/creds"
# dovecot and nginx also on the node's own address, for direct access
LAB_DOVECOT_LISTEN="127.0.0.1, 10.99.2.11" LAB_NGINX_EXTRA_LISTEN="10.99.2.11:8080" lab_node_start be1
i=0; while ! ip netns exec "$(lab_ns be1)" ss -ltn | grep -q 10.99.2.11:8080 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p "$LAB/fe"
lab_pki || { fail "test PKI" "$(tail -n 3 "$LAB/pki.log")"; finish; }
lab_frontend_conf "$LAB/fe/fe.ini"
sed -i 's/^role = frontend$/role = frontend\nmax_per_client = 5000/' "$LAB/fe/fe.ini"
lab_frontend_tls_listeners >>"$LAB/fe/fe.ini"
for l in "pop3 1110" "imap 1143"; do
    set -- $l
    printf '[listen %s-stls]\naddress = 10.99.1.1:%s\nprotocol = %s\ntls = starttls\ncert = %s\nkey = %s\n' \
        "$1" "$2" "$1" "$LAB/pki/srv.pem" "$LAB/pki/srv.key" >>"$LAB/fe/fe.ini"
done
lab_frontend_start "$LAB/fe/fe.ini" || { fail "frontend" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }
DLOG="$LAB/be1/dovecot/dovecot.log"
ALOG="$LAB/be1/web/logs/access.log"
FE() { ip netns exec "$(lab_ns fe)" "$ESPROXY" load "$@"; }
CL() { lab_client "$ESPROXY" load "$@"; }
j() {   # file path.to.key: a value from the JSON summary (0 when absent)
    python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$1" "$2"
}
lines() { if [ -f "$1" ]; then grep -c -- "$2" "$1"; else echo 0; fi; }
snapshot() { d_pop=$(lines "$DLOG" 'pop3-login: Info: Login: ') d_imap=$(lines "$DLOG" 'imap-login: Info: Login: ')
             d_fail=$(lines "$DLOG" 'auth failed') n_acc=$(lines "$ALOG" ' /'); }

# counts LABEL JSON: the load's counts against the log lines added since the snapshot
counts() {
    sleep 0.3   # dovecot and nginx write their log lines after the reply
    p=$(( $(lines "$DLOG" 'pop3-login: Info: Login: ') - d_pop )); i=$(( $(lines "$DLOG" 'imap-login: Info: Login: ') - d_imap ))
    h=$(( $(lines "$ALOG" ' /') - n_acc ))
    lp=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["ops"]; print(*(d.get(k, {}).get("ok", 0) for k in ("pop3.login", "imap.login", "http.get", "http.post", "http.session")))' "$2")
    set -- "$1" $lp
    [ "$2" = "$p" ] && [ "$3" = "$i" ] && [ $(($4 + $5)) = "$h" ] && [ "$2" -gt 0 ] && [ "$3" -gt 0 ] && [ "$4" -gt 0 ] &&
        pass "$1: load counts match the servers' logs (POP3 logins $2, IMAP logins $3, HTTP requests $(($4 + $5)))" ||
        fail "$1: counts vs logs" "load pop3 $2 imap $3 http $(($4 + $5)); dovecot pop3 $p imap $i; nginx $h"
}

# ---- direct: fe namespace -> node address ----
snapshot
FE --json -n 60 -c 6 --mix pop3,imap,http --port http=8080 --credentials "$LAB/creds" --retr 1 \
    --fetch-headers 1 --fetch-bodies 1 --http GET:/,POST:/upload,GET:/health 10.99.2.11 >"$LAB/direct.json" 2>"$LAB/direct.err"
rc=$?
[ $rc = 0 ] && [ "$(j "$LAB/direct.json" sessions)" = 60 ] && [ "$(j "$LAB/direct.json" ok)" = 60 ] &&
    pass "direct: 60 sessions, all ok (exit 0)" || fail "direct run" "rc $rc $(cat "$LAB/direct.json" "$LAB/direct.err" | head -c 600)"
counts direct "$LAB/direct.json"
for u in u1 u2 u3; do
    grep -q "Login: user=<$u>" "$DLOG" || miss="$miss $u"
done
[ -z "${miss:-}" ] && pass "credentials file: every user logged in (u1 u2 u3)" || fail "credentials" "no login for$miss"
post=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops"]["http.post"]["ok"])' "$LAB/direct.json")
[ "$(grep -c 'POST /upload HTTP/1.1 200' "$ALOG")" = "$post" ] && [ "$post" = 20 ] &&
    pass "HTTP keep-alive: 20 POSTs of 1024 bytes logged by nginx with status 200" || fail "HTTP POST" "load $post, nginx $(grep -c 'POST /upload' "$ALOG")"
[ ! -s "$LAB/direct.err" ] && pass "quiet when stderr is not a terminal" || fail "quiet" "$(head -c 200 "$LAB/direct.err")"

# ---- through the frontend: client namespace -> esproxy -> tunnel -> node ----
snapshot
CL --json -d 3 -c 8 --ramp-up 0.5 --mix pop3=2,imap=1,http=1 --credentials "$LAB/creds" 10.99.1.1 \
    >"$LAB/fe.json" 2>"$LAB/fe.err"
[ "$(j "$LAB/fe.json" failed)" = 0 ] && [ "$(j "$LAB/fe.json" sessions)" -ge 20 ] &&
    pass "through the frontend: $(j "$LAB/fe.json" sessions) sessions in 3 s, none failed" ||
    fail "through the frontend" "$(head -c 600 "$LAB/fe.json") $(head -c 300 "$LAB/fe.err")"
counts "through the frontend" "$LAB/fe.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["ops"]
p, i = d["pop3.session"]["ok"], d["imap.session"]["ok"]
assert abs(p - 2 * i) <= 2, (p, i)' "$LAB/fe.json" && pass "protocol mix pop3=2,imap=1 kept" || fail "mix" "$(head -c 300 "$LAB/fe.json")"

# ---- STARTTLS is refused by the lab's dovecot (ssl = no): a protocol error, not auth ----
CL --json -n 3 -c 3 --mix pop3 --tls starttls 10.99.1.1 >"$LAB/stls.json" 2>&1
# the frontend offers STLS only with a certificate; without one it answers -ERR
[ "$(j "$LAB/stls.json" errors.protocol)" = 3 ] && pass "STLS refused: 3 protocol errors" ||
    fail "STLS refused" "$(head -c 400 "$LAB/stls.json")"

# ---- TLS through the frontend, the certificate verified with the lab CA ----
snapshot
CL --json -n 30 -c 6 --mix pop3,imap,http --tls implicit --ca "$LAB/pki/ca.pem" --credentials "$LAB/creds" 10.99.1.1 \
    >"$LAB/tls.json" 2>"$LAB/tls.err"
rc=$?
[ $rc = 0 ] && [ "$(j "$LAB/tls.json" ok)" = 30 ] && [ "$(j "$LAB/tls.json" failed)" = 0 ] &&
    pass "implicit TLS through the frontend: 30 sessions, all ok" ||
    fail "implicit TLS" "rc $rc $(grep -o '"errors": {[^}]*}' "$LAB/tls.json") $(head -c 300 "$LAB/tls.err")"
counts "implicit TLS" "$LAB/tls.json"
snapshot
CL --json -n 20 -c 4 --mix pop3,imap,http --tls starttls --ca "$LAB/pki/ca.pem" --port pop3=1110 --port imap=1143 \
    --port http=443 --credentials "$LAB/creds" 10.99.1.1 >"$LAB/stls-ok.json" 2>"$LAB/stls-ok.err"
rc=$?
[ $rc = 0 ] && [ "$(j "$LAB/stls-ok.json" ok)" = 20 ] && [ "$(j "$LAB/stls-ok.json" failed)" = 0 ] &&
    pass "STARTTLS through the frontend: 20 sessions, all ok" ||
    fail "STARTTLS" "rc $rc $(grep -o '"errors": {[^}]*}' "$LAB/stls-ok.json") $(head -c 300 "$LAB/stls-ok.err")"
counts "STARTTLS" "$LAB/stls-ok.json"
# a CA that did not sign the frontend's certificate: the handshake fails, no login is tried
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$LAB/other.key" \
    -subj "/CN=other CA" -days 1 -out "$LAB/other.pem" >/dev/null 2>&1
snapshot
CL --json -n 6 -c 3 --mix pop3,imap,http --tls implicit --ca "$LAB/other.pem" 10.99.1.1 >"$LAB/badca.json" 2>&1
sleep 0.3
n=$(( $(lines "$DLOG" 'pop3-login: Info: Login: ') - d_pop + $(lines "$DLOG" 'imap-login: Info: Login: ') - d_imap + $(lines "$ALOG" ' /') - n_acc ))
[ "$(j "$LAB/badca.json" errors.tls)" = 6 ] && [ "$(j "$LAB/badca.json" failed)" = 6 ] && [ "$n" = 0 ] &&
    pass "wrong CA: 6 tls errors, no login or request reached the servers" || fail "wrong CA" "logins+requests $n $(head -c 400 "$LAB/badca.json")"

# ---- error kinds ----
FE --json -n 4 -c 4 --mix imap --idle 20000 --credentials "$LAB/creds" 10.99.2.11 >"$LAB/kick.json" 2>&1 &
kp=$!
i=0; while [ "$(ip netns exec "$(lab_ns be1)" doveadm -c "$LAB/be1/dovecot/dovecot.conf" who 2>/dev/null | grep -c ' imap ')" -lt 3 ] && [ $i -lt 50 ]; do
    sleep 0.1; i=$((i + 1)); done
ip netns exec "$(lab_ns be1)" doveadm -c "$LAB/be1/dovecot/dovecot.conf" kick u1 >/dev/null 2>&1
ip netns exec "$(lab_ns be1)" doveadm -c "$LAB/be1/dovecot/dovecot.conf" kick u2 >/dev/null 2>&1
ip netns exec "$(lab_ns be1)" doveadm -c "$LAB/be1/dovecot/dovecot.conf" kick u3 >/dev/null 2>&1
wait "$kp"
[ "$(j "$LAB/kick.json" errors.closed)" = 4 ] && [ "$(j "$LAB/kick.json" ops.imap\\.idle.failed)" -ge 0 ] &&
    pass "doveadm kick during IDLE: 4 sessions closed by the server" || fail "kick" "$(head -c 500 "$LAB/kick.json")"

CL --json -n 5 -c 5 --mix http --http GET:/missing 10.99.1.1 >"$LAB/404.json" 2>&1
[ "$(j "$LAB/404.json" errors.protocol)" = 5 ] && pass "HTTP 404: 5 protocol errors" || fail "404" "$(head -c 400 "$LAB/404.json")"

CL --json -n 3 -c 3 --mix pop3 --port pop3=1999 10.99.1.1 >"$LAB/conn.json" 2>&1
[ "$(j "$LAB/conn.json" errors.connect)" = 3 ] && pass "nothing listening: 3 connect errors" || fail "connect" "$(head -c 400 "$LAB/conn.json")"

lab_client python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.99.1.2", 2110)); s.listen(64); time.sleep(30)' &
mute_pid=$!
i=0; while ! lab_client ss -ltn | grep -q 10.99.1.2:2110 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
CL --json -n 3 -c 3 --mix pop3 --port pop3=2110 --timeout 400 10.99.1.2 >"$LAB/mute.json" 2>&1
[ "$(j "$LAB/mute.json" errors.timeout)" = 3 ] && pass "a server that never greets: 3 timeouts (400 ms)" || fail "timeout" "$(head -c 400 "$LAB/mute.json")"

# dovecot delays failed logins (auth_failure_delay, per-IP penalty): these go last
# through the frontend first: the node's auth process then has no failures pending
CL --json -n 2 -c 2 --mix pop3,imap --password wrong --timeout 20000 10.99.1.1 >"$LAB/auth-fe.json" 2>&1
[ "$(j "$LAB/auth-fe.json" errors.auth)" = 2 ] && pass "wrong password through the frontend: 2 auth errors" ||
    fail "wrong password through the frontend" "$(grep -o '"errors": {[^}]*}' "$LAB/auth-fe.json"); frontend: $(grep -i 'login\|auth' "$LAB/fe/fe.log" | tail -n 2)"
snapshot
FE --json -n 4 -c 4 --mix pop3,imap --password wrong --timeout 20000 10.99.2.11 >"$LAB/auth.json" 2>&1
rc=$?
sleep 0.3
f=$(( $(lines "$DLOG" 'auth failed') - d_fail ))
[ "$rc" = 1 ] && [ "$(j "$LAB/auth.json" errors.auth)" = 4 ] && [ "$(j "$LAB/auth.json" failed)" = 4 ] && [ "$f" = 4 ] &&
    pass "wrong password: 4 auth errors, dovecot logged 4 failed logins, exit 1" ||
    fail "wrong password" "rc $rc dovecot $f: $(grep -o '"errors": {[^}]*}' "$LAB/auth.json")"


# ---- usage ----
"$ESPROXY" load --concurrency zero 10.99.1.1 >/dev/null 2>"$LAB/usage.err"
rc=$?
[ $rc = 2 ] && grep -q "^usage: esproxy load" "$LAB/usage.err" && pass "bad argument: usage on stderr, exit 2" ||
    fail "usage" "rc $rc"
finish
