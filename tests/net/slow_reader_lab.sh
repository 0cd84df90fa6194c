#!/bin/sh
# Output backpressure (issue 16): eight clients that never read their
# output, against `esproxy run` (frontend) with real dovecot and nginx
# behind the backend role. POP3 pouring CAPA (plain, after STLS, implicit
# TLS), IMAP pouring CAPABILITY and NOOP before login (plain, after
# STARTTLS) and HTTP pipelining GETs of a 5 MiB file (plain twice,
# implicit TLS), each with 4 KiB of receive buffer. The frontend must stop
# reading them, and the back-end streams of the HTTP ones, so that its RSS
# grows by at most what the configuration allows; an ordinary client must
# be served meanwhile; and once the attackers read again every command they
# sent must be answered, in order (tests/lab/slow_readers.py). A client
# that leaves its output unread for preauth_idle_s is disconnected.
#
# Its own small network, inside 10.99.40.0/24:
#   client 10.99.40.2 --- 10.99.40.1 fe 10.99.40.65 --- 10.99.40.66 be1 (VIP 10.99.40.100)
. "$ESPROXY_ROOT/tests/cli/lib.sh"
# ASan (ESPROXY_BIN=build/asan/esproxy): a small quarantine, counted in the bound below
export ASAN_OPTIONS="quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
LAB=$(mktemp -d)
P=sr$$
. "$ROOT/tests/lab/lib.sh"
LAB_VIP=10.99.40.100
FE=10.99.40.1
trap lab_exit EXIT
chmod 755 "$LAB"

OUTBUF=131072           # [listen] output_buffer of every listener here
BIG=5242880             # the file the HTTP attackers ask for, again and again
NCLIENTS=8 NHTTP=3      # attackers (slow_readers.py), of which HTTP

lab_net3 10.99.40 || { fail "lab network" "cannot create namespaces"; finish; }
lab_mail 2000
lab_pki || { fail "test PKI" "$(tail -n 3 "$LAB/pki.log")"; finish; }
mkdir -p "$LAB/web/html"
head -c $BIG /dev/urandom >"$LAB/web/html/big.bin"
lab_node_start be1

mkdir -p "$LAB/fe"
conf_frontend "$LAB/fe" 10.99.40.65 $LAB_VIP "$LAB/psk" $FE >"$LAB/fe/fe.ini"
lab_frontend_starttls "$LAB/fe/fe.ini"
lab_frontend_tls_listeners $FE >>"$LAB/fe/fe.ini"
# where a client that leaves its output unread is disconnected soon
STALL_IDLE_S=2
printf "[listen httpstall]\naddress = $FE:8080\nprotocol = http\npreauth_idle_s = $STALL_IDLE_S\n" >>"$LAB/fe/fe.ini"
sed -i "s|^\(protocol = .*\)|\1\noutput_buffer = $OUTBUF|" "$LAB/fe/fe.ini"
if ! "$ESPROXY_BIN" check -c "$LAB/fe/fe.ini" >"$LAB/check.out" 2>&1; then
    fail "frontend config" "$(cat "$LAB/check.out")"; finish
fi
lab_frontend_start "$LAB/fe/fe.ini" && pass "frontend up, tunnel to the VIP established" ||
    { fail "frontend start" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }

# The bound, from the configuration: per connection the output buffer plus
# 256 KiB (input held while stopped: one 64 KiB read, the module's
# unconsumed bytes, one 4 KiB slice's replies; TLS: mbedTLS's two 16.7 KiB
# records and one 64 KiB read of ciphertext), per HTTP connection the
# tunnel stream's receive window (lwIP's TCP_WND) with a quarter more for
# the per-segment pbufs, and 2 MiB for the allocator.
wnd=$(sed -n "s/^#define TCP_WND[[:space:]][[:space:]]*//p" "$ROOT/ipsec/lwip/lwipopts.h")
wnd=$(($wnd))
bound_kib=$(( (NCLIENTS * (OUTBUF + 262144) + NHTTP * wnd * 5 / 4) / 1024 + 2048 ))
echo "bound: $NCLIENTS x (output_buffer $((OUTBUF / 1024)) KiB + 256 KiB) + $NHTTP x stream window $((wnd / 1024)) KiB x 5/4 + 2048 KiB = $bound_kib KiB"
if lab_san; then
    # ASan keeps freed blocks in its quarantine (lab: 16 MiB) and pads every block
    bound_kib=$((bound_kib * 2 + 16384))
    echo "ASan build: bound x 2 + its 16 MiB quarantine = $bound_kib KiB"
fi

# A client whose output stays over output_buffer for preauth_idle_s is
# closed; the close flushes for CHAN_CLOSE_LINGER_MS, then resets. Twice that.
linger=$(sed -n "s/^#define CHAN_CLOSE_LINGER_MS[[:space:]][[:space:]]*//p" "$ROOT/proxy/chan.h")
stall_bound_ms=$(( 2 * (STALL_IDLE_S * 1000 + linger) ))

lab_client python3 "$ROOT/tests/lab/slow_readers.py" --host $FE --fe-pid "$lab_frontend_pid" --ca "$LAB/pki/ca.pem" \
    --big-size $BIG --bound-kib $bound_kib --abort-kib $((bound_kib * 32)) \
    --stall-port 8080 --stall-bound-ms $stall_bound_ms >"$LAB/attack.out" 2>&1
rc=$?
cat "$LAB/attack.out"
failures=$((failures + $(grep -c '^FAIL ' "$LAB/attack.out")))
[ $rc = 0 ] || grep -q '^FAIL ' "$LAB/attack.out" || fail "slow_readers.py" "exited $rc"
grep -q "event=session_output_stalled listener=httpstall" "$LAB/fe/fe.log" &&
    pass "the frontend logs the stalled client it disconnected" ||
    fail "stalled client log" "$(grep -c session_output_stalled "$LAB/fe/fe.log") session_output_stalled lines"
lab_alive "$lab_frontend_pid" && pass "frontend still running" || fail "frontend" "$(tail -n 5 "$LAB/fe/fe.log")"
finish
