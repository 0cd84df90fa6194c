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
echo "POP3 sessions/s: direct $dr, through esproxy $er, ratio $ratio (target >= 0.8); esproxy CPU ${cps} us/session; client CPU $(js "$e" client_cpu_s) s"
[ "$(js "$e" errors)" = 0 ] && pass "POP3 benchmark ran without errors ($en sessions)" || fail "POP3 benchmark" "$e"

# ---- IMAP NOOP latency ----
d=$(ip netns exec "$(lab_ns fe)" python3 "$BC" imap-noop 10.99.2.11 143 3000)
e=$(lab_client python3 "$BC" imap-noop 10.99.1.1 143 3000)
added=$(python3 -c "print(round($(js "$e" p99_us) - $(js "$d" p99_us)))")
echo "IMAP NOOP p99: direct $(js "$d" p99_us) us, through esproxy $(js "$e" p99_us) us: added ${added} us (target <= 150); p50 $(js "$d" p50_us) -> $(js "$e" p50_us) us"
pass "IMAP NOOP latency measured"

# ---- HTTP single-stream download ----
d=$(ip netns exec "$(lab_ns fe)" curl -s -o /dev/null -w '%{speed_download}' http://10.99.2.11:8080/64m.bin)
e=$(lab_client curl -s -o /dev/null -w '%{speed_download} %{size_download}' http://10.99.1.1/64m.bin)
ratio=$(python3 -c "print(round(${e% *} / $d, 3))")
echo "HTTP 64 MB download: direct $(python3 -c "print(round($d / 1e6, 1))") MB/s, through esproxy $(python3 -c "print(round(${e% *} / 1e6, 1))") MB/s, ratio $ratio (target >= 0.4)"
[ "${e#* }" = 67108864 ] && pass "HTTP download complete through esproxy" || fail "HTTP download" "${e#* } bytes"

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
