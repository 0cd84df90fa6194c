#!/bin/sh
# Front-end benchmarks in the namespace lab, each against direct access to
# the same dovecot/nginx measured in the same run (this machine is shared
# and noisy: only same-run ratios mean anything):
#   - POP3 sessions per second, 16 concurrent clients (connect, login,
#     STAT, RETR of a 100 KB message, QUIT): target >= 0.8 of direct
#   - added latency of an IMAP NOOP round trip: target p99 added <= 150 us
#   - single-stream HTTP download of 64 MB: target >= 0.4 of direct
#   - memory per idle authenticated IMAP session in the frontend: <= 16 KiB
# Direct access: clients in the front-end's namespace talk to the node's
# own address; through esproxy: clients in the client namespace talk to
# the frontend, which logs in through the tunnel.
# References in the same run, for what the targets ask ("at plain-relay
# level"): HAProxy (one thread, mode tcp) as one plain relay in the
# front-end's namespace, and as two chained relays (front-end namespace,
# then the node) - the same two user-space hops as esproxy's front-end +
# backend role, without ESP. For HTTP, the crypto ceiling: mbedTLS
# AES-GCM-128 seal and open on one core (build/rel/bench/bench_tunnel
# --gcm); every byte is sealed by one process and opened by the other.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=bn$$
. "$ROOT/tests/lab/lib.sh"
trap 'lab_cleanup; rm -rf "$LAB"' EXIT
chmod 755 "$LAB"
BC="$ROOT/tests/lab/bench_clients.py"

lab_net || { fail "lab network" "cannot create namespaces"; finish; }
lab_vip_add be1
lab_mail 100000
mkdir -p "$LAB/web/html"
head -c 67108864 /dev/zero >"$LAB/web/html/64m.bin"
LAB_DOVECOT_LISTEN="127.0.0.1, 10.99.2.11" lab_dovecot be1 no
LAB_NGINX_EXTRA_LISTEN="10.99.2.11:8080" lab_nginx be1
lab_backend_conf be1 none
lab_backend be1
mkdir -p "$LAB/fe"
lab_frontend_conf "$LAB/fe/fe.ini"
sed -i 's/^role = frontend$/role = frontend\nmax_per_client = 5000/' "$LAB/fe/fe.ini"   # every client comes from one address here
lab_frontend_start "$LAB/fe/fe.ini" || { fail "frontend" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }
fe_pid=$lab_frontend_pid
lab_haproxy fe 10.99.1.1:2110=10.99.2.11:110 10.99.1.1:2143=10.99.2.11:143 \
    10.99.1.1:3110=10.99.2.11:3110 10.99.1.1:3143=10.99.2.11:3143 &&
    lab_haproxy be1 10.99.2.11:3110=127.0.0.1:110 10.99.2.11:3143=127.0.0.1:143 ||
    { fail "HAProxy references" "$(cat "$LAB/fe/haproxy.log" "$LAB/be1/haproxy.log" 2>&1)"; finish; }
js() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# ---- POP3 sessions per second ----
d=$(ip netns exec "$(lab_ns fe)" python3 "$BC" pop3-rate 10.99.2.11 110 5 16)
c0=$(cpu_s "$fe_pid")
e=$(lab_client python3 "$BC" pop3-rate 10.99.1.1 110 5 16)
c1=$(cpu_s "$fe_pid")
dr=$(js "$d" rate); er=$(js "$e" rate); en=$(js "$e" sessions)
ratio=$(python3 -c "print(round($er / $dr, 3))")
cps=$(python3 -c "print(round(($c1 - $c0) / max($en, 1) * 1e6))")
h1=$(lab_client python3 "$BC" pop3-rate 10.99.1.1 2110 5 16)
h2=$(lab_client python3 "$BC" pop3-rate 10.99.1.1 3110 5 16)
r() { python3 -c "print(round($(js "$1" rate) / $dr, 3))"; }
echo "POP3 sessions/s: direct $dr, through esproxy $er, ratio $ratio (target >= 0.8); esproxy CPU ${cps} us/session; client CPU $(js "$e" client_cpu_s) s"
echo "POP3 sessions/s references: HAProxy one hop $(js "$h1" rate) (ratio $(r "$h1")), two hops $(js "$h2" rate) (ratio $(r "$h2"))"
[ "$(js "$e" errors)" = 0 ] && pass "POP3 benchmark ran without errors ($en sessions)" || fail "POP3 benchmark" "$e"
[ "$(js "$h1" errors)" = 0 ] && [ "$(js "$h2" errors)" = 0 ] && pass "POP3 references (HAProxy) ran without errors" ||
    fail "POP3 references" "$h1 $h2"

# ---- IMAP NOOP latency ----
d=$(ip netns exec "$(lab_ns fe)" python3 "$BC" imap-noop 10.99.2.11 143 3000)
e=$(lab_client python3 "$BC" imap-noop 10.99.1.1 143 3000)
added=$(python3 -c "print(round($(js "$e" p99_us) - $(js "$d" p99_us)))")
h1=$(lab_client python3 "$BC" imap-noop 10.99.1.1 2143 3000)
h2=$(lab_client python3 "$BC" imap-noop 10.99.1.1 3143 3000)
a() { python3 -c "print(round($(js "$1" p99_us) - $(js "$d" p99_us)))"; }
echo "IMAP NOOP p99: direct $(js "$d" p99_us) us, through esproxy $(js "$e" p99_us) us: added ${added} us (target <= 150); p50 $(js "$d" p50_us) -> $(js "$e" p50_us) us"
echo "IMAP NOOP p99 added, references: HAProxy one hop $(a "$h1") us (p50 $(js "$h1" p50_us)), two hops $(a "$h2") us (p50 $(js "$h2" p50_us))"
[ -n "$added" ] && [ -n "$(a "$h1")" ] && [ -n "$(a "$h2")" ] && pass "IMAP NOOP latency measured, with references" ||
    fail "IMAP NOOP latency" "$e $h1 $h2"

# ---- HTTP single-stream download ----
d=$(ip netns exec "$(lab_ns fe)" curl -s -o /dev/null -w '%{speed_download}' http://10.99.2.11:8080/64m.bin)
e=$(lab_client curl -s -o /dev/null -w '%{speed_download} %{size_download}' http://10.99.1.1/64m.bin)
ratio=$(python3 -c "print(round(${e% *} / $d, 3))")
echo "HTTP 64 MB download: direct $(python3 -c "print(round($d / 1e6, 1))") MB/s, through esproxy $(python3 -c "print(round(${e% *} / 1e6, 1))") MB/s, ratio $ratio (target >= 0.4)"
[ "${e#* }" = 67108864 ] && pass "HTTP download complete through esproxy" || fail "HTTP download" "${e#* } bytes"
g=$("$ROOT/build/rel/bench/bench_tunnel" --gcm)
gmin=$(python3 -c "s, o = '$g'.split(); print(min(float(s), float(o)))")
echo "HTTP crypto ceiling: AES-GCM-128 via mbedTLS on one core, seal ${g% *} MB/s, open ${g#* } MB/s: esproxy cannot exceed $gmin MB/s = ratio $(python3 -c "print(round($gmin * 1e6 / $d, 3))") of direct (target 0.4 needs $(python3 -c "print(round(0.4 * $d / 1e6, 1))") MB/s); esproxy at $(python3 -c "print(round(${e% *} / 1e6 / $gmin, 2))") of the ceiling"

# ---- memory per idle authenticated IMAP session ----
N=300
touch "$LAB/hold"
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$fe_pid/status")
lab_client python3 "$BC" imap-idle 10.99.1.1 143 $N "$LAB/hold" >"$LAB/idle.out" &
idle=$!
i=0; while ! grep -q logged_in "$LAB/idle.out" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$fe_pid/status")
rm -f "$LAB/hold"; wait "$idle"
per=$(( (rss1 - rss0) * 1024 / N ))
echo "memory per idle authenticated IMAP session: $per bytes ($N sessions: RSS ${rss0} -> ${rss1} KiB) (target <= 16384)"
grep -q '"logged_in": '$N "$LAB/idle.out" && pass "$N idle IMAP sessions logged in" || fail "idle sessions" "$(cat "$LAB/idle.out")"
finish
