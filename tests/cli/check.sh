#!/bin/sh
# `esproxy check`: every error class gives "FILE:LINE: message" and exit 2;
# the sample configs pass; bad command lines give usage and exit 2.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

HEAD='[esproxy]
role = frontend'
TUN='[tunnel main]
local = 10.99.2.10
peer = 10.99.2.100
local_id = fe.test
peer_id = mail.test
psk = 0123456789abcdef'
LIS='[listen imap]
address = 127.0.0.1:1143
protocol = imap'

# expect NAME EXPECTED-STDERR-LINE CONFIG-TEXT
expect() {
    name=$1 want=$2
    printf '%s\n' "$3" >"$T/c.ini"
    "$ESPROXY" check -c "$T/c.ini" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then
        fail "$name" "exit $rc, expected 2"
    elif ! grep -qxF "$T/c.ini:$want" "$T/err"; then
        fail "$name" "no line '$T/c.ini:$want' in: $(cat "$T/err")"
    else
        pass "$name"
    fi
}

expect "unknown section" "12: unknown section [smtp]" "$HEAD
$TUN
$LIS
[smtp]"
expect "unknown key" "3: unknown key 'colour' in [esproxy]" "$HEAD
colour = red
$TUN
$LIS"
expect "missing required key" "3: [tunnel main]: missing required key 'peer_id'" "$HEAD
[tunnel main]
local = 10.99.2.10
peer = 10.99.2.100
local_id = a
psk = abcdefgh
$LIS"
expect "bad address" "5: peer: bad IPv4 address '10.99.2.999' (or: any)" "$HEAD
[tunnel main]
local = 10.99.2.10
peer = 10.99.2.999
local_id = a
peer_id = b
psk = abcdefgh
$LIS"
expect "bad metrics address" "3: metrics: '127.0.0.1' is not ADDRESS:PORT" "$HEAD
metrics = 127.0.0.1
$TUN
$LIS"
expect "bad port" "10: address: bad port '99999' (1..65535)" "$HEAD
$TUN
[listen imap]
address = 0.0.0.0:99999
protocol = imap"
expect "number out of range" "9: dead_after_ms: '0' is not a number in 10..600000" "$HEAD
$TUN
dead_after_ms = 0
$LIS"
expect "duplicate listener port" "12: listener port 1143 already used by [listen imap] at line 9" "$HEAD
$TUN
$LIS
[listen other]
address = 0.0.0.0:1143
protocol = pop3"
expect "unreadable psk file" "8: psk_file: '/nonexistent/psk': cannot read: No such file or directory" "$HEAD
[tunnel main]
local = 10.99.2.10
peer = 10.99.2.100
local_id = a
peer_id = b
psk_file = /nonexistent/psk
$LIS"
expect "unreadable cert file" "13: cert: '/nonexistent/tls.crt': cannot read: No such file or directory" "$HEAD
$TUN
$LIS
tls = implicit
cert = /nonexistent/tls.crt
key = /nonexistent/tls.key"
expect "section in the wrong role" "12: [forward] is only valid with role = backend (role is frontend)" "$HEAD
$TUN
$LIS
[forward]
143 = 127.0.0.1:143"
expect "key value in the wrong role" "5: peer = any is only valid with role = backend: a frontend needs the VIP address" "$HEAD
[tunnel main]
local = 10.99.2.10
peer = any
local_id = a
peer_id = b
psk = abcdefgh
$LIS"
expect "syntax error" "3: syntax error: expected [section], key = value, or a comment" "$HEAD
no equals sign here
$TUN
$LIS"

# Every error is reported, not just the first.
printf '%s\n' "$HEAD" "bogus = 1" "[tunnel main]" "local = x" "[listen a]" "address = y" >"$T/many.ini"
"$ESPROXY" check -c "$T/many.ini" 2>"$T/err" >/dev/null
n=$(grep -c "^$T/many.ini:[0-9]*: " "$T/err")
[ "$n" -ge 5 ] && pass "all errors reported ($n)" || fail "all errors reported" "only $n: $(cat "$T/err")"

# A secret in a bad value never shows up.
printf '%s\n' "$HEAD" "[tunnel main]" "local = 10.99.2.10" "peer = 10.99.2.100" "local_id = a" \
    "peer_id = b" "psk = 0xnothexSUPERSECRET" "$LIS" >"$T/s.ini"
"$ESPROXY" check -c "$T/s.ini" >"$T/out" 2>&1
if grep -q SUPERSECRET "$T/out"; then fail "psk not echoed" "$(cat "$T/out")"; else pass "psk not echoed"; fi

for f in "$ROOT/config/frontend.ini" "$ROOT/config/backend.ini"; do
    if out=$("$ESPROXY" check -c "$f" 2>&1) && echo "$out" | grep -q "valid"; then
        pass "sample $(basename "$f") is valid"
    else
        fail "sample $(basename "$f") is valid" "$out"
    fi
done

# The samples give each front-end its own IKE identity (a shared one makes
# front-ends evict each other through INITIAL_CONTACT): every back-end
# [tunnel] accepts a different peer_id, and the sample front-end's local_id
# (in the compose file: its ESPROXY_TUNNEL_LOCAL_ID) is one of them.
ini_ids() { sed -n "s/^$1 *= *\([^ ;]*\).*/\1/p" "$2"; }
for pair in "config/frontend.ini config/backend.ini" "docker/frontend.ini docker/backend.ini"; do
    set -- $pair
    fe=$(ini_ids local_id "$ROOT/$1")
    ids=$(ini_ids peer_id "$ROOT/$2")
    n=$(printf '%s\n' "$ids" | wc -l)
    if [ "$n" -ge 2 ] && [ "$(printf '%s\n' "$ids" | sort -u | wc -l)" -eq "$n" ] &&
       [ "$(printf '%s\n' "$ids" | grep -cxF "$fe")" -eq 1 ]; then
        pass "$2: one identity per front-end ($(echo $ids))"
    else
        fail "$2: one identity per front-end" "front-end $fe, back-end peer_ids: $(echo $ids)"
    fi
done
compose_id=$(sed -n 's/^ *ESPROXY_TUNNEL_LOCAL_ID: *\([^ #]*\).*/\1/p' "$ROOT/docker/compose.yaml")
if [ -n "$compose_id" ] && ini_ids peer_id "$ROOT/docker/backend.ini" | grep -qxF "$compose_id"; then
    pass "compose front-end has its own identity ($compose_id)"
else
    fail "compose front-end has its own identity" "ESPROXY_TUNNEL_LOCAL_ID '$compose_id'"
fi

# Command line errors: usage on stderr, exit 2.
for args in "" "frobnicate" "check" "check -x" "run -c" "version extra" "status --bogus"; do
    # shellcheck disable=SC2086
    "$ESPROXY" $args >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q "^usage: esproxy" "$T/err" && [ ! -s "$T/out" ]; then
        pass "usage error for '$args'"
    else
        fail "usage error for '$args'" "exit $rc, stderr: $(head -n 2 "$T/err")"
    fi
done
"$ESPROXY" --help >"$T/out" 2>&1 && grep -q "^  run -c FILE" "$T/out" && pass "--help" || fail "--help" "$(cat "$T/out")"
"$ESPROXY" version | grep -q "^esproxy " && pass "version" || fail "version" "no version line"
finish
