#!/bin/sh
# The front-end proxy end to end in the namespace lab: real clients in the
# client namespace talk POP3, IMAP and HTTP (plain, STARTTLS, implicit TLS
# against a test CA) to `esproxy run` (frontend), which logs in through the
# real tunnel to the backend role and real dovecot and nginx on be1.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=fe$$
. "$ROOT/tests/lab/lib.sh"
trap lab_exit EXIT
chmod 755 "$LAB"

lab_net || { fail "lab network" "cannot create namespaces"; finish; }
lab_vip_add be1
lab_mail 2000
lab_pki || { fail "test PKI" "$(tail -n 3 "$LAB/pki.log")"; finish; }
# a 20 MB message, retrieved through the tunnel later
big="$LAB/mail/shared/$LAB_USER/Maildir/cur/1700000001.M2P1.lab:2,S"
{
    printf 'From: lab@example.test\r\nTo: alice@example.test\r\nSubject: big message\r\n\r\n'
    head -c 15000000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
} >"$big"
chown 65534:65534 "$big"
mkdir -p "$LAB/web/html"
head -c 8000000 /dev/urandom >"$LAB/web/html/big.bin"
lab_node_start be1

mkdir -p "$LAB/fe"
lab_frontend_conf "$LAB/fe/fe.ini"
# STARTTLS on the standard ports (plaintext login still allowed, for the
# clients that do not do TLS), implicit TLS on 993/995/443
sed -i "/^\[listen imap\]/,/^protocol/ s|^protocol = imap|protocol = imap\ntls = starttls\nplaintext_auth = yes\ncert = $LAB/pki/srv.pem\nkey = $LAB/pki/srv.key|" "$LAB/fe/fe.ini"
sed -i "/^\[listen pop3\]/,/^protocol/ s|^protocol = pop3|protocol = pop3\ntls = starttls\nplaintext_auth = yes\ncert = $LAB/pki/srv.pem\nkey = $LAB/pki/srv.key|" "$LAB/fe/fe.ini"
lab_frontend_tls_listeners >>"$LAB/fe/fe.ini"
if ! "$ESPROXY_BIN" check -c "$LAB/fe/fe.ini" >"$LAB/check.out" 2>&1; then
    fail "frontend config" "$(cat "$LAB/check.out")"; finish
fi
export ESPROXY_METRICS=127.0.0.1:9464    # the environment override of [esproxy] metrics
lab_frontend_start "$LAB/fe/fe.ini" && pass "frontend up, tunnel to the VIP established" ||
    { fail "frontend start" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }
unset ESPROXY_METRICS

CURL="lab_client curl -s --max-time 20"
msg="$LAB/mail/shared/$LAB_USER/Maildir/cur/1700000000.M1P1.lab:2,S"

# ---- curl: plain, STARTTLS, implicit TLS ----
out=$($CURL http://10.99.1.1/health)
[ "$out" = "ok be1" ] && pass "curl http://" || fail "curl http" "'$out'"
out=$($CURL --cacert "$LAB/pki/ca.pem" https://10.99.1.1/health)
[ "$out" = "ok be1" ] && pass "curl https:// (implicit TLS)" || fail "curl https" "'$out'"
$CURL --user alice:secret123 pop3://10.99.1.1/1 >"$LAB/p.out"
cmp -s "$LAB/p.out" "$msg" && pass "curl pop3:// RETR, byte for byte" || fail "curl pop3" "$(head -c 100 "$LAB/p.out")"
$CURL --ssl-reqd --cacert "$LAB/pki/ca.pem" --user alice:secret123 pop3://10.99.1.1/1 >"$LAB/p.out"
cmp -s "$LAB/p.out" "$msg" && pass "curl pop3:// with STLS" || fail "curl pop3 STLS" "$(head -c 100 "$LAB/p.out")"
$CURL --cacert "$LAB/pki/ca.pem" --user alice:secret123 pop3s://10.99.1.1/1 >"$LAB/p.out"
cmp -s "$LAB/p.out" "$msg" && pass "curl pop3s:// (implicit TLS)" || fail "curl pop3s" "$(head -c 100 "$LAB/p.out")"
for u in "imap://10.99.1.1" "--ssl-reqd imap://10.99.1.1" "imaps://10.99.1.1"; do
    out=$($CURL --cacert "$LAB/pki/ca.pem" --user alice:secret123 ${u%% *} "${u##* }/INBOX;UID=1" 2>&1 | head -c 300)
    case $u in --ssl-reqd*) out=$($CURL --cacert "$LAB/pki/ca.pem" --ssl-reqd --user alice:secret123 "imap://10.99.1.1/INBOX;UID=1" | head -c 300) ;; esac
    echo "$out" | grep -q "Subject: lab message" && pass "curl $u FETCH" || fail "curl $u" "$out"
done

# ---- 20 MB message intact ----
$CURL --max-time 120 --user alice:secret123 pop3://10.99.1.1/2 >"$LAB/big.out"
if [ "$(sha256sum <"$LAB/big.out")" = "$(sha256sum <"$big")" ]; then
    pass "a $(($(wc -c <"$big") / 1000000)) MB message retrieved intact over POP3 (sha256)"
else
    fail "20 MB message" "$(wc -c <"$LAB/big.out") bytes"
fi

# ---- python imaplib / poplib: STARTTLS, implicit TLS, APPEND with a literal ----
out=$(lab_client python3 - "$LAB/pki/ca.pem" 2>&1 <<'PY'
import imaplib, poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
m = imaplib.IMAP4("10.99.1.1", 143, timeout=20)
m.starttls(ssl_context=ctx)
assert m.sock.version() in ("TLSv1.2", "TLSv1.3"), m.sock.version()
m.login("alice", "secret123")
typ, data = m.select("INBOX")
before = int(data[0])
body = b"From: py@example.test\r\nSubject: appended by imaplib\r\n\r\nhello through the tunnel\r\n"
typ, data = m.append("INBOX", None, None, body)
assert typ == "OK", data
typ, data = m.select("INBOX")
assert int(data[0]) == before + 1, data
typ, data = m.fetch(str(before + 1), "(BODY.PEEK[])")
assert data[0][1] == body, data
m.logout()
m = imaplib.IMAP4_SSL("10.99.1.1", 993, ssl_context=ctx, timeout=20)
m.login("alice", "secret123"); m.select("INBOX"); m.logout()
p = poplib.POP3("10.99.1.1", 110, timeout=20)
p.stls(context=ctx)
p.user("alice"); p.pass_("secret123")
n, size = p.stat(); assert n >= 1
p.quit()
p = poplib.POP3_SSL("10.99.1.1", 995, context=ctx, timeout=20)
p.user("alice"); p.pass_("secret123"); p.stat(); p.quit()
print("python ok")
PY
)
[ "$out" = "python ok" ] && pass "python imaplib/poplib: STARTTLS, implicit TLS, APPEND with a literal" ||
    fail "python clients" "$out"

# ---- a large upload, verified: 8 MB APPENDed, fetched back, compared ----
# (client -> front-end -> tunnel -> the backend's relay -> dovecot, the
# direction in which the relay queues what the local socket does not take)
out=$(lab_client python3 - 2>&1 <<'PY'
import base64, hashlib, imaplib, random
rnd = random.Random(7)
raw = rnd.randbytes(6 * 1024 * 1024)
b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
body = b"From: big@example.test\r\nSubject: big upload\r\n\r\n" + b64
m = imaplib.IMAP4("10.99.1.1", 143, timeout=60)
m.login("alice", "secret123")
typ, data = m.select("INBOX")
n = int(data[0])
typ, data = m.append("INBOX", None, None, body)
assert typ == "OK", data
typ, data = m.select("INBOX")
assert int(data[0]) == n + 1, data
typ, data = m.fetch(str(n + 1), "(BODY.PEEK[])")
got = data[0][1]
assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest(), (len(got), len(body))
m.store(str(n + 1), "+FLAGS", "\\Deleted"); m.expunge(); m.logout()
print("upload ok %d" % len(body))
PY
)
case "$out" in
    "upload ok "*) pass "IMAP APPEND of ${out#upload ok } bytes through the tunnel, fetched back identical (SHA-256)" ;;
    *) fail "large APPEND" "$out" ;;
esac

# ---- fetchmail (POP3 and IMAP) and mbsync ----
mkdir -p "$LAB/clients/fmhome" "$LAB/clients/mbsync-local"
for proto in pop3:110 imap:143; do
    printf 'set no syslog\npoll 10.99.1.1 proto %s port %s auth password\n  user "alice" there with password "secret123" is "alice" here\n  keep fetchall sslproto ""\n  mda "/bin/sh -c '"'"'cat >> %s/clients/fetchmail.%s'"'"'"\n' \
        "${proto%%:*}" "${proto##*:}" "$LAB" "${proto%%:*}" >"$LAB/clients/fetchmailrc"
    chmod 600 "$LAB/clients/fetchmailrc"
    HOME=$LAB/clients/fmhome lab_client fetchmail -f "$LAB/clients/fetchmailrc" >"$LAB/clients/fm.log" 2>&1
    grep -q "Subject: lab message" "$LAB/clients/fetchmail.${proto%%:*}" 2>/dev/null &&
        pass "fetchmail ${proto%%:*} retrieves the mailbox" || fail "fetchmail ${proto%%:*}" "$(tail -n 3 "$LAB/clients/fm.log")"
done
cat >"$LAB/clients/mbsyncrc" <<EOF
IMAPAccount lab
Host 10.99.1.1
Port 143
User alice
Pass secret123
SSLType None
AuthMechs LOGIN

IMAPStore lab-remote
Account lab

MaildirStore lab-local
Path $LAB/clients/mbsync-local/
Inbox $LAB/clients/mbsync-local/INBOX

Channel lab
Far :lab-remote:
Near :lab-local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
EOF
lab_client mbsync -c "$LAB/clients/mbsyncrc" -a >"$LAB/clients/mbsync.log" 2>&1
n=$(find "$LAB/clients/mbsync-local/INBOX/cur" "$LAB/clients/mbsync-local/INBOX/new" -type f 2>/dev/null | wc -l)
if [ "$n" -ge 2 ] && grep -rqs "Subject: lab message" "$LAB/clients/mbsync-local/INBOX"; then
    pass "mbsync syncs INBOX ($n messages)"
else
    fail "mbsync" "$n messages; $(tail -n 3 "$LAB/clients/mbsync.log")"
fi

# ---- HTTP: download, chunked upload, keep-alive reuse ----
$CURL -o "$LAB/dl.bin" http://10.99.1.1/big.bin
cmp -s "$LAB/dl.bin" "$LAB/web/html/big.bin" && pass "HTTP download of 8 MB intact" || fail "HTTP download" "differs"
out=$(head -c 3000000 /dev/urandom | lab_client curl -s --max-time 20 -H "Transfer-Encoding: chunked" -T - http://10.99.1.1/upload)
[ "$out" = "uploaded" ] && pass "HTTP chunked upload" || fail "chunked upload" "'$out'"
out=$(lab_client curl -sv --max-time 20 http://10.99.1.1/health http://10.99.1.1/health 2>&1)
echo "$out" | grep -q "Re-using existing connection" && [ "$(echo "$out" | grep -c '^ok be1')" = 2 ] &&
    pass "HTTP keep-alive: two requests on one connection" || fail "keep-alive" "$(echo "$out" | tail -n 3)"

# ---- 100 concurrent sessions ----
lab_client sh -c 'for i in $(seq 1 100); do
    (curl -s --max-time 30 --user alice:secret123 pop3://10.99.1.1/1 | tail -c 20 >/dev/null && echo ok) &
done; wait' >"$LAB/conc.out" 2>&1
n=$(grep -c '^ok' "$LAB/conc.out")
[ "$n" = 100 ] && pass "100 concurrent POP3 sessions all succeed" || fail "100 concurrent" "$n ok"

# ---- status ----
"$ESPROXY_BIN" status --json -s "$LAB/fe/control.sock" >"$LAB/status.json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["tunnels"][0]; assert t["state"]=="up" and t["sa"]["packets_in"]>0, t; assert d["sessions"]["pop3"]["accepted"]>=100' \
    "$LAB/status.json" && pass "status --json: tunnel up with traffic, session counts" || fail "status" "$(head -c 600 "$LAB/status.json")"

# ---- Prometheus metrics (ESPROXY_METRICS) agree with status ----
ip netns exec "$(lab_ns fe)" curl -s http://127.0.0.1:9464/metrics >"$LAB/metrics.txt"
if /usr/bin/python3 "$ROOT/tests/lab/prom_check.py" <"$LAB/metrics.txt" >"$LAB/metrics.samples"; then
    m() { awk -v k="$1" '$1 == k { print $2 }' "$LAB/metrics.samples"; }
    acc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sessions"]["pop3"]["accepted"])' "$LAB/status.json")
    [ "$(m 'esproxy_tunnel_up{tunnel="main"}')" = 1 ] && [ "$(m 'esproxy_esp_packets_total{direction="in"}')" -gt 1000 ] &&
        [ "$(m 'esproxy_esp_bytes_total{direction="in"}')" -gt 20000000 ] &&
        [ "$(m 'esproxy_sessions_accepted_total{protocol="pop3"}')" -ge "$acc" ] &&
        [ "$(m 'esproxy_sessions_spliced_total{protocol="pop3"}')" -ge 100 ] &&
        [ "$(m 'esproxy_sessions_accepted_total{protocol="http"}')" -ge 1 ] &&
        [ "$(m 'esproxy_esp_dropped_total{reason="icv"}')" = 0 ] &&
        pass "metrics: tunnel up, $(m 'esproxy_esp_bytes_total{direction="in"}') ESP bytes in, $(m 'esproxy_sessions_spliced_total{protocol="pop3"}') POP3 logins, no ICV failures" ||
        fail "metrics" "$(grep -E 'tunnel_up|esp_(packets|bytes)_total|pop3|icv' "$LAB/metrics.samples" | tr '\n' ' ')"
else
    fail "metrics parse" "$(head -3 "$LAB/metrics.samples") $(head -c 300 "$LAB/metrics.txt")"
fi
finish
