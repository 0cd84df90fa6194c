#!/bin/sh
# Startup failures: every one ends with exactly one line that is not
# level=info (a FILE:LINE config error or one level=error event) naming the
# cause (the file or address and the reason), an exit status from 1 to 127,
# and no sanitizer report. Unreadable files and privileged ports are tried
# as the user nobody (root reads anything). UDP 4500 in use: run.sh.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
busy=
cleanup() { [ -n "$busy" ] && kill "$busy" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
chmod 755 "$T"
mkdir "$T/ctl" && chown nobody "$T/ctl"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=fe.test \
    >/dev/null 2>&1
chmod 644 "$T/key.pem"
echo "not a pem file" >"$T/garbage.pem"
echo startup-test-key >"$T/psk"
chmod 644 "$T/psk" "$T/garbage.pem"
cp "$T/key.pem" "$T/key600.pem" && chmod 600 "$T/key600.pem"
cp "$T/psk" "$T/psk600" && chmod 600 "$T/psk600"
NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"

# conf FILE [KEY=VALUE...] LISTENER-LINES...: a frontend config
conf() {
    f=$1; shift
    cat >"$f" <<INI
[esproxy]
role = frontend
control = ${CTL:-$T/ctl/control.sock}

[tunnel main]
local = 127.0.0.1
peer = 127.0.0.2
udp_port = 14747
local_id = fe.test
peer_id = mail.test
psk_file = ${PSK:-$T/psk}

[listen imap]
address = 127.0.0.1:${PORT:-11443}
protocol = imap
INI
    printf '%s\n' "$@" >>"$f"
}

# expect LABEL PATTERN [AS-PREFIX]: run $T/c.ini, judge the output
expect() {
    label=$1 pattern=$2 as=${3:-}
    for bin in "$ESPROXY" "$ROOT/build/asan/esproxy"; do
        rm -f "$T/ctl/control.sock"
        timeout 10 $as "$bin" run -c "$T/c.ini" >/dev/null 2>"$T/err"; rc=$?
        lines=$(grep -vc "level=info" "$T/err")
        kind=$(basename "$(dirname "$bin")")
        if [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] && grep -v "level=info" "$T/err" | grep -q -- "$pattern" &&
            ! grep -q "Sanitizer\|runtime error:" "$T/err"; then
            [ "$kind" = build ] && pass "$label: exit $rc, one line: $(grep -v level=info "$T/err" | sed 's/^ts=[^ ]* //')"
        else
            fail "$label ($kind)" "exit $rc, $lines lines not at info, want '$pattern': $(head -c 1500 "$T/err")"
        fi
    done
}

conf "$T/c.ini" "tls = implicit" "cert = $T/cert.pem" "key = $T/garbage.pem"
expect "TLS key not a key" "event=tls_setup_failed listener=imap error=\"$T/garbage.pem: cannot load private key"
conf "$T/c.ini" "tls = implicit" "cert = $T/garbage.pem" "key = $T/key.pem"
expect "TLS certificate not a certificate" "event=tls_setup_failed listener=imap error=\"$T/garbage.pem: cannot load certificate"
conf "$T/c.ini" "tls = implicit" "cert = $T/cert.pem" "key = $T/key600.pem"
expect "TLS key unreadable" "^$T/c.ini:18: key: '$T/key600.pem': cannot read: Permission denied" "$NOBODY"
PSK=$T/missing conf "$T/c.ini"
expect "PSK file missing" "^$T/c.ini:11: psk_file: '$T/missing': cannot read: No such file"
PSK=$T/psk600 conf "$T/c.ini"
expect "PSK file unreadable" "^$T/c.ini:11: psk_file: '$T/psk600': cannot read: Permission denied" "$NOBODY"
conf "$T/c.ini" "[routing]" "map = $T/missing.map"
expect "routing map missing" "^$T/c.ini:17: map: '$T/missing.map': cannot read: No such file"
CTL=$T/root-only/control.sock conf "$T/c.ini"
mkdir "$T/root-only"
expect "control socket folder not writable" "event=control_failed path=\"$T/root-only/control.sock\" error=permission denied" "$NOBODY"
PORT=143 conf "$T/c.ini"
expect "privileged port as a user" "event=listen_failed listener=imap address=127.0.0.1:143 error=permission denied" "$NOBODY"

python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1", 11444)); s.listen(); print(flush=True); time.sleep(60)' >"$T/busy" &
busy=$!
i=0; while [ ! -s "$T/busy" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
PORT=11444 conf "$T/c.ini"
expect "listener port in use" "event=listen_failed listener=imap address=127.0.0.1:11444 error=address already in use"
conf "$T/c.ini"
sed -i "s|^control = .*|&\nmetrics = 127.0.0.1:11444|" "$T/c.ini"
expect "metrics port in use" "event=metrics_failed address=127.0.0.1:11444 error=address already in use"
conf "$T/c.ini"
sed -i "s|^psk_file = .*|auth = cert\ncert = $T/cert.pem\nkey = $T/garbage.pem\nca = $T/cert.pem|" "$T/c.ini"
expect "IKE key not a key" "$T/garbage.pem"
conf "$T/c.ini"
sed -i "s|^control = .*|&\nkeylog = $T/root-only/keys|" "$T/c.ini"
expect "key log not writable" "event=keylog_open_failed path=\"$T/root-only/keys\" error=\"Permission denied\"" "$NOBODY"
finish
