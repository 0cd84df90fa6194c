#!/bin/sh
# Output backpressure under attack: clients that read slowly, read in
# bursts, pipeline long lines and literals, half-close, stall after login;
# tests/lab/slow_attack.py drives them against `esproxy run` (frontend)
# with real dovecot and nginx behind the backend role. Each check prints
# PASS/FAIL; SLOW_ATTACK_ONLY=name,name runs a subset.
#
# Its own small network, inside 10.99.45.0/24:
#   client 10.99.45.2 --- 10.99.45.1 fe 10.99.45.65 --- 10.99.45.66 be1 (VIP 10.99.45.100)
. "$ESPROXY_ROOT/tests/cli/lib.sh"
export ASAN_OPTIONS="quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
LAB=$(mktemp -d)
P=sa$$
. "$ROOT/tests/lab/lib.sh"
LAB_VIP=10.99.45.100
FE=10.99.45.1
trap lab_exit EXIT
chmod 755 "$LAB"

OUTBUF=131072           # [listen] output_buffer of every listener here
BIG=5242880             # the HTTP file
MSG=3000000             # the mail message's random bytes (base64: about 4 MB)
STALL_IDLE_S=3          # preauth_idle_s and idle_s of the *stall listeners

lab_net3 10.99.45 || { fail "lab network" "cannot create namespaces"; finish; }
lab_mail $MSG
lab_pki || { fail "test PKI" "$(tail -n 3 "$LAB/pki.log")"; finish; }
mkdir -p "$LAB/web/html"
head -c $BIG /dev/urandom >"$LAB/web/html/big.bin"
lab_node_start be1

mkdir -p "$LAB/fe"
conf_frontend "$LAB/fe" 10.99.45.65 $LAB_VIP "$LAB/psk" $FE >"$LAB/fe/fe.ini"
lab_frontend_starttls "$LAB/fe/fe.ini"
lab_frontend_tls_listeners $FE >>"$LAB/fe/fe.ini"
# listeners where a client that leaves its output unread is disconnected soon
for l in "imapstall 1143 imap 143" "pop3stall 1110 pop3 110" "httpstall 8080 http 80"; do
    set -- $l
    printf "[listen %s]\naddress = $FE:%s\nprotocol = %s\nbackend_port = %s\npreauth_idle_s = $STALL_IDLE_S\nidle_s = $STALL_IDLE_S\n" \
        "$1" "$2" "$3" "$4" >>"$LAB/fe/fe.ini"
    [ "$3" = http ] || printf "plaintext_auth = yes\n" >>"$LAB/fe/fe.ini"
done
sed -i "s|^\(protocol = .*\)|\1\noutput_buffer = $OUTBUF|" "$LAB/fe/fe.ini"
if ! "$ESPROXY_BIN" check -c "$LAB/fe/fe.ini" >"$LAB/check.out" 2>&1; then
    fail "frontend config" "$(cat "$LAB/check.out")"; finish
fi
lab_frontend_start "$LAB/fe/fe.ini" && pass "frontend up, tunnel to the VIP established" ||
    { fail "frontend start" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }

lab_client python3 "$ROOT/tests/lab/slow_attack.py" --host $FE --fe-pid "$lab_frontend_pid" --ca "$LAB/pki/ca.pem" \
    --fe-log "$LAB/fe/fe.log" --outbuf $OUTBUF --big-size $BIG --stall-idle-s $STALL_IDLE_S \
    --maildir "$LAB/mail/shared/$LAB_USER/Maildir/cur" --web "$LAB/web/html" \
    ${SLOW_ATTACK_ONLY:+--only "$SLOW_ATTACK_ONLY"} $(lab_san && echo --asan) >"$LAB/attack.out" 2>&1
rc=$?
cat "$LAB/attack.out"
failures=$((failures + $(grep -c '^FAIL ' "$LAB/attack.out")))
[ $rc = 0 ] || grep -q '^FAIL ' "$LAB/attack.out" || fail "slow_attack.py" "exited $rc"
if grep -E 'event=session|event=tls|secret123' "$LAB/fe/fe.log" | grep -q secret123; then
    fail "no secrets in the log" "$(grep -c secret123 "$LAB/fe/fe.log") lines hold the password"
else
    pass "the frontend's log holds no password"
fi
[ -n "${SLOW_ATTACK_KEEP:-}" ] && cp "$LAB/fe/fe.log" "$SLOW_ATTACK_KEEP"
lab_alive "$lab_frontend_pid" && pass "frontend still running" || fail "frontend" "$(tail -n 5 "$LAB/fe/fe.log")"
finish
