#!/bin/sh
# Client channels (proxy/chan.c) against Python's ssl module (OpenSSL):
# plain echo, implicit TLS and STARTTLS with a test CA (RSA key, so the
# ECDHE-RSA suites are used), TLS 1.2 with an AEAD suite, session
# resumption, TLS 1.1 and CBC-only clients refused.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
TOOL=${CHAN_ECHO:-$ROOT/build/rel/tools/chan_echo}
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

if ! command -v openssl >/dev/null || [ ! -x "$TOOL" ]; then
    fail "setup" "needs openssl and $TOOL"
    finish
fi
(
    cd "$T" &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj "/CN=chan test CA" &&
    openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.pem -subj "/CN=localhost" &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext &&
    openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 2 -extfile ext -out cert.pem
) >"$T/openssl.log" 2>&1 || { fail "setup" "openssl: $(cat "$T/openssl.log")"; finish; }

"$TOOL" "$T/cert.pem" "$T/key.pem" >"$T/ports" 2>"$T/log" &
pid=$!
i=0
while [ ! -s "$T/ports" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
ports=$(cat "$T/ports")
[ -n "$ports" ] || { fail "start" "no ports: $(cat "$T/log")"; finish; }

python3 -W ignore::DeprecationWarning - "$T/ca.pem" $ports <<'PY'
import socket, ssl, sys
ca = sys.argv[1]
ports = dict(a.split("=") for a in sys.argv[2:])
P, TLS, STLS = int(ports["plain"]), int(ports["tls"]), int(ports["starttls"])

def check(name, fn):
    try:
        fn()
        print("PASS " + name)
    except Exception as e:
        print("FAIL %s: %r" % (name, e))

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("short read")
        b += d
    return b

def ctx():
    c = ssl.create_default_context(cafile=ca)
    return c

def plain():
    with socket.create_connection(("127.0.0.1", P), timeout=5) as s:
        s.sendall(b"hello\r\n")
        assert recv_exact(s, 7) == b"hello\r\n"

def aead(s):
    name, ver, _ = s.cipher()
    assert s.version() == "TLSv1.2", s.version()
    assert ("GCM" in name or "CHACHA20" in name) and name.startswith("ECDHE-RSA"), name

def implicit():
    data = bytes(range(256)) * 4096         # 1 MiB through the TLS echo
    with socket.create_connection(("127.0.0.1", TLS), timeout=10) as raw:
        with ctx().wrap_socket(raw, server_hostname="localhost") as s:
            aead(s)
            s.sendall(data)
            assert recv_exact(s, len(data)) == data

def starttls():
    with socket.create_connection(("127.0.0.1", STLS), timeout=5) as raw:
        raw.sendall(b"STARTTLS\r\n")
        assert recv_exact(raw, 14) == b"OK begin TLS\r\n"
        with ctx().wrap_socket(raw, server_hostname="localhost") as s:
            aead(s)
            s.sendall(b"after tls\r\n")
            assert recv_exact(s, 11) == b"after tls\r\n"

def resumption():
    c = ctx()
    c.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", TLS), timeout=5) as raw:
        with c.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"x"); recv_exact(s, 1)
            sess = s.session
    assert sess is not None and sess.has_ticket, "no ticket"
    with socket.create_connection(("127.0.0.1", TLS), timeout=5) as raw:
        with c.wrap_socket(raw, server_hostname="localhost", session=sess) as s:
            s.sendall(b"y"); recv_exact(s, 1)
            assert s.session_reused, "not resumed"

def refused(setup):
    c = ctx()
    setup(c)
    with socket.create_connection(("127.0.0.1", TLS), timeout=5) as raw:
        try:
            with c.wrap_socket(raw, server_hostname="localhost") as s:
                raise AssertionError("handshake succeeded: %s %s" % (s.version(), s.cipher()))
        except (ssl.SSLError, ConnectionError):
            pass

def tls11(c):
    c.minimum_version = ssl.TLSVersion.TLSv1
    c.maximum_version = ssl.TLSVersion.TLSv1_1
    c.set_ciphers("DEFAULT:@SECLEVEL=0")

def cbc(c):
    c.maximum_version = ssl.TLSVersion.TLSv1_2
    c.set_ciphers("ECDHE-RSA-AES128-SHA256:AES128-SHA")

check("python plain echo", plain)
check("python implicit TLS 1.2 AEAD echo 1 MiB", implicit)
check("python STARTTLS upgrade and echo", starttls)
check("python session resumption with a ticket", resumption)
check("python TLS 1.1 client refused", lambda: refused(tls11))
check("python CBC-only client refused", lambda: refused(cbc))
check("python plain still fine after refusals", plain)
PY

kill "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 0 ]; then pass "chan_echo exits cleanly with no channel left"; else fail "chan_echo exit" "rc=$rc: $(tail -n 5 "$T/log")"; fi
if grep -q "PRIVATE KEY\|BEGIN" "$T/log"; then fail "log" "key material in the log"; else pass "no key material in the log"; fi
pid=
finish
