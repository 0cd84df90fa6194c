#!/bin/sh
# Failover in the namespace cluster lab: two back-end nodes with real
# dovecot (one shared maildir), nginx and the backend role, keepalived
# (VRRPv3, advert_int 0.1) owning the VIP; clients loop POP3, IMAP and HTTP
# sessions through `esproxy run` (frontend) while the active node dies
# (its link goes down) or is stopped gracefully (SIGTERM: DELETE, VIP
# released). Then the VIP flaps 20 times, and the crash drill is repeated
# with strongSwan's default liveness for contrast. Every figure is printed.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=fo$$
. "$ROOT/tests/lab/lib.sh"
trap lab_exit EXIT
chmod 755 "$LAB"
DEAD=300
CONF_DOVECOT_REUSE=yes      # sessions as long as the tunnel makes them (tests/lab/conf.sh)
# Bounds come from the configuration (lab defaults in tests/lab/conf.sh) and
# from this run: a session's p90 duration outside the failover (drill_analyze's
# session_p90_ms) stands for "one session on this machine now". A dead node
# is found within PROBE + DEAD of its last answer (the idle probe; with
# traffic waiting for it, within stall + DEAD: stall = dead_after / 2, the
# frontend's policy; a starved client may send nothing for a while, so the
# bound takes the idle case), an IKE attempt toward a VIP nobody serves is
# retried RETRANSMIT after its last send, and the first session to succeed
# afterwards takes about one session: allow two.
PROBE=1000 RETRANSMIT=100
bound() {  # drill what_ms: what_ms + RETRANSMIT + two of the drill's p90 sessions
    p90=$(fig "$1" session_p90_ms)
    echo "$(($2 + RETRANSMIT + 2 * p90))"
}

lab_net || { fail "lab network" "cannot create namespaces"; finish; }
lab_mail 2000
for n in be1 be2; do lab_node_start "$n"; done
lab_keepalived be1 150 MASTER
lab_keepalived be2 100 BACKUP
lab_wait_vip be1 5000 && pass "keepalived: VIP on be1" || { fail "keepalived" "$(cat "$LAB/be1/ka/keepalived.log")"; finish; }

start_frontend() {  # LAB_* knobs from the environment
    mkdir -p "$LAB/fe"
    lab_frontend_conf "$LAB/fe/fe.ini.$$"
    lab_frontend_start "$LAB/fe/fe.ini.$$" && fe_pid=$lab_frontend_pid
}

vip_time() {    # node: time keepalived on node last became MASTER
    sed -n 's/^MASTER //p' "$LAB/$1/ka/transitions" 2>/dev/null | tail -n 1
}

wait_master() { # node since_ms: wait until node became MASTER after since
    i=0
    while [ $i -lt 500 ]; do
        t=$(vip_time "$1")
        [ -n "$t" ] && [ "$t" -ge "$2" ] && { echo "$t"; return 0; }
        sleep 0.01; i=$((i + 1))
    done
    echo 0; return 1
}

# drill LABEL ACTION NEWNODE: load for 8 s, the action about 2 s in
drill() {
    label=$1 action=$2 new=$3
    lab_client python3 "$ROOT/tests/lab/sessions.py" 10.99.1.1 8 "$LAB/$label.jsonl" --workers 2 &
    load=$!
    lab_wait_load "$LAB/$label.jsonl"
    eval "$action"
    t0=$(now_ms)    # the action has taken effect: the node is dead or stopping
    tv=$(wait_master "$new" "$((t0 - 100))")
    wait "$load"
    # a frontend that died (a sanitizer report, see lab_san_check) ends the lab
    lab_alive "$fe_pid" || { fail "$label: frontend" "exited: $(tail -n 3 "$LAB/fe/fe.log")"; finish; }
    python3 "$ROOT/tests/lab/drill_analyze.py" "$LAB/$label.jsonl" "$t0" "$tv" "$DEAD" >"$LAB/$label.fig"
    eval "${label}_t0=$t0 ${label}_tv=$tv"
    echo "---- $label: action at $t0, VIP on $new at $tv (+$((tv - t0)) ms)"
    sed 's/^/    /' "$LAB/$label.fig"
}
fig() { sed -n "s/^$2=//p" "$LAB/$1.fig"; }

start_frontend && pass "frontend up through the VIP on be1" || { fail "frontend" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }

# ---- crash drill: be1's link goes down (node death) ----
drill crash "ip -n $(lab_ns be1) link set eth0 down" be2
r=$(fig crash recovery_ms); v=$(fig crash from_vip_ms)
move=$((crash_tv - crash_t0)); detect=$((PROBE + DEAD))
[ "$move" -gt "$detect" ] && later=$move || later=$detect
b=$(bound crash "$later")
why="bound $b = max(probe_interval+dead_after $detect, VIP move $move) + retransmit $RETRANSMIT + 2 x session p90 $(fig crash session_p90_ms)"
[ "$r" -ge 0 ] && [ "$r" -le "$b" ] && pass "crash: node death -> first successful session ${r} ms ($why)" ||
    fail "crash recovery" "${r} ms ($why)"
# The VIP's time comes from keepalived's notify script, which runs after the
# address is up (a fork and exec later; tens of ms under load): a session may
# succeed a little "before" it.
VIP_LAG=50
[ "$detect" -gt "$move" ] && wait_detect=$((detect - move)) || wait_detect=0
b=$(bound crash "$wait_detect")
why="bound $b = detection left after the VIP move $wait_detect + retransmit $RETRANSMIT + 2 x session p90"
[ "$v" -ge -$VIP_LAG ] && [ "$v" -le "$b" ] && pass "crash: VIP arrival -> first successful session ${v} ms ($why)" ||
    fail "crash from VIP" "${v} ms ($why)"
[ "$(fig crash inflight_late)" = 0 ] && pass "crash: no in-flight session hung (failed within dead_after + p90 + 1 s, or resumed and finished)" ||
    fail "crash: hanging sessions" "$(fig crash inflight_late) late: $(fig crash inflight_late_detail)"
[ "$(fig crash new_failed)" = 0 ] && pass "crash: all $(fig crash new_total) sessions opened during the failover succeeded (held)" ||
    fail "crash: new sessions failed" "$(fig crash new_failed) of $(fig crash new_total): $(fig crash errors)"
[ "$(fig crash http_inflight_failed)" = 0 ] && pass "crash: idempotent HTTP GETs in flight succeeded (retried)" ||
    fail "crash: HTTP in flight" "$(fig crash http_inflight_failed) failed"
crash_r=$r

# ---- back to be1 (it preempts when its link returns) ----
ip -n "$(lab_ns be1)" link set eth0 up
lab_wait_vip be1 5000
sleep 1.5

# ---- graceful drill: SIGTERM the active node's backend and keepalived ----
eval "bpid=\$lab_backend_pid_be1 kpid=\$lab_keepalived_pid_be1"
# the administrator's order: stop the backend (it sends DELETE and exits
# within 200 ms), then keepalived (releases the VIP). Both at once race:
# when the VIP leaves first the DELETE is lost and the frontend re-keys on
# the new holder's hint instead, which the DELETE check below would miss.
graceful_stop() {
    kill -TERM "$bpid"
    i=0; while lab_alive "$bpid" && [ $i -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
    kill -TERM "$kpid"
}
drill graceful graceful_stop be2
# The frontend's IKE_SA_INIT toward the VIP is resent retransmit_ms after
# its last send while the stopping node refuses it (ICMP), its doubling
# ladder starting over; sends dropped silently as the VIP moves double the
# gap again: two such drops put the next send up to 4 x retransmit_ms after
# the VIP arrived.
v=$(fig graceful from_vip_ms)
b=$(bound graceful $((3 * RETRANSMIT)))
why="bound $b = 4 x retransmit $RETRANSMIT + 2 x session p90 $(fig graceful session_p90_ms)"
[ "$v" -ge -$VIP_LAG ] && [ "$v" -le "$b" ] && pass "graceful: VIP arrival -> first successful session ${v} ms ($why)" ||
    fail "graceful from VIP" "${v} ms ($why)"
grep -q "reason=delete" "$LAB/fe/fe.log" && pass "graceful: the frontend re-keyed on the backend's DELETE" ||
    fail "graceful DELETE" "$(grep tunnel_state "$LAB/fe/fe.log" | tail -n 3)"
[ "$(fig graceful new_failed)" = 0 ] && pass "graceful: no new session failed" ||
    fail "graceful: new sessions failed" "$(fig graceful new_failed): $(fig graceful errors)"
graceful_v=$v

# ---- flapping: 20 moves in about a minute, by hand with gratuitous ARP ----
kill "$lab_keepalived_pid_be2" 2>/dev/null
sleep 0.5
lab_backend be1
for n in be1 be2; do ip -n "$(lab_ns $n)" addr del "$LAB_VIP/24" dev eth0 2>/dev/null; done
ip -n "$(lab_ns be2)" addr add "$LAB_VIP/24" dev eth0
ip netns exec "$(lab_ns be2)" arping -q -U -c 1 -w 0 -i eth0 -S "$LAB_VIP" "$LAB_VIP" || true
sleep 2
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$fe_pid/status")
followed=0 holder=be2
for i in $(seq 1 20); do
    new=be1; [ "$holder" = be1 ] && new=be2
    ip -n "$(lab_ns $holder)" addr del "$LAB_VIP/24" dev eth0
    ip -n "$(lab_ns $new)" addr add "$LAB_VIP/24" dev eth0
    ip netns exec "$(lab_ns $new)" arping -q -U -c 1 -w 0 -i eth0 -S "$LAB_VIP" "$LAB_VIP" || true
    holder=$new
    sleep 2.5
    out=$(lab_client curl -s --max-time 3 http://10.99.1.1/health)
    [ "$out" = "ok $holder" ] && followed=$((followed + 1))
done
[ "$followed" = 20 ] && pass "flapping: the frontend followed all 20 VIP moves" || fail "flapping" "followed $followed of 20"
"$ESPROXY_BIN" status --json -s "$LAB/fe/control.sock" >"$LAB/status.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
t = d["tunnels"][0]
assert t["ike_sas"] == 1, t["ike_sas"]
assert d["esp_sas"]["in"] == 1 and d["esp_sas"]["out"] == 1, d["esp_sas"]
assert d["held"] == 0, d["held"]
' "$LAB/status.json" && pass "after flapping: one IKE SA, one CHILD SA pair, nothing held" ||
    fail "after flapping" "$(head -c 400 "$LAB/status.json")"
# the same story in the Prometheus metrics (through the control socket)
"$ESPROXY_BIN" status --prometheus -s "$LAB/fe/control.sock" | /usr/bin/python3 "$ROOT/tests/lab/prom_check.py" >"$LAB/metrics.samples"
awk '
$1 == "esproxy_tunnel_state_entered_total{state=\"down\",tunnel=\"main\"}" { left += $2 }
$1 == "esproxy_tunnel_state_entered_total{state=\"suspect\",tunnel=\"main\"}" { left += $2 }
$1 == "esproxy_tunnel_up{tunnel=\"main\"}" { up = $2 }
$1 ~ /^esproxy_sessions_held_total/ { held += $2 }
$1 ~ /^esproxy_sessions_waiting/ { waiting += $2 }
END { print left + 0, up + 0, held + 0, waiting + 0 }' "$LAB/metrics.samples" >"$LAB/metrics.fig"
read -r m_left m_up m_held m_wait <"$LAB/metrics.fig"
# crash (make-before-break: up -> suspect -> up), graceful (down), the flaps
[ "$m_left" -ge 2 ] && [ "$m_up" = 1 ] && [ "$m_held" -ge 1 ] && [ "$m_wait" = 0 ] &&
    pass "metrics: tunnel left up $m_left times (suspect or down) and is up, $m_held sessions were held, none waiting" ||
    fail "metrics after the drills" "left up=$m_left up=$m_up held=$m_held waiting=$m_wait $(head -2 "$LAB/metrics.samples")"
sleep 1
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$fe_pid/status")
[ $((rss1 - rss0)) -le 2048 ] && pass "after flapping: frontend RSS ${rss0} -> ${rss1} KiB (baseline kept)" ||
    fail "memory after flapping" "${rss0} -> ${rss1} KiB"

# ---- contrast: the crash drill with strongSwan's default liveness ----
kill "$fe_pid"; wait "$fe_pid" 2>/dev/null
# strongSwan: no DPD by default; an exchange is retransmitted after 4 s x 1.8^n, 5 times: 165 s in all
LAB_PROBE_MS=600000 LAB_DEAD_MS=165000 LAB_RETRANSMIT_MS=4000 LAB_RETRANSMIT_TRIES=5 LAB_SPECULATIVE=no start_frontend ||
    fail "contrast frontend" "$(tail -n 3 "$LAB/fe/fe.log")"
other=be1; [ "$holder" = be1 ] && other=be2
ip netns exec "$(lab_ns $other)" true
ip -n "$(lab_ns $holder)" link set eth0 down
t0=$(now_ms)
ip -n "$(lab_ns $other)" addr add "$LAB_VIP/24" dev eth0
ip netns exec "$(lab_ns $other)" arping -q -U -c 1 -w 0 -i eth0 -S "$LAB_VIP" "$LAB_VIP" || true
lab_client python3 "$ROOT/tests/lab/sessions.py" 10.99.1.1 15 "$LAB/contrast.jsonl" --workers 1 --protos http,pop3
python3 "$ROOT/tests/lab/drill_analyze.py" "$LAB/contrast.jsonl" "$t0" "$t0" 165000 >"$LAB/contrast.fig"
cr=$(fig contrast recovery_ms)
[ "$cr" = -1 ] && crs="no recovery within 15 s (a dead peer is declared after 165 s)" || crs="${cr} ms"
echo "---- side by side (crash drill, node death -> first successful session)"
echo "    esproxy liveness (dead_after ${DEAD} ms, speculative re-key): ${crash_r} ms"
echo "    strongSwan default liveness (4 s x 1.8^n, 5 tries):        ${crs}"
echo "    graceful move, VIP arrival -> first success:             ${graceful_v} ms"
[ "$cr" = -1 ] || [ "$cr" -gt "$crash_r" ] && pass "contrast: strongSwan defaults leave clients waiting ($crs)" ||
    fail "contrast" "$crs"
finish
