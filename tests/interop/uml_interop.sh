#!/bin/sh
# NOT YET GREEN (see the commit message): kept out of tests/net/ so make test
# is unaffected; run with ESPROXY_ROOT=$PWD sh tests/interop/uml_interop.sh
# Interop with real kernel IPsec back-ends: the unchanged esproxy frontend
# (`esproxy run`, only its config) against two user-mode-linux nodes whose
# Linux kernels do ESP transport mode in UDP, keyed by strongSwan (charon +
# swanctl, PSK, encap = yes, AES-GCM-16, the protected ports as traffic
# selectors), with dovecot and nginx on the VIP and keepalived moving the VIP
# between the nodes. Checks: the kernel SAs seen from inside a node; real
# POP3, IMAP and HTTP sessions; the crash drill (the active node's link is
# cut) and the graceful drill (charon shutdown sends DELETE, keepalived
# releases the VIP), figures printed next to the backend role's; rekeys
# initiated by strongSwan (short CHILD and IKE lifetimes) under load.
# The UML root filesystem is built once and cached (tests/interop/build-rootfs.sh).
# UML_ONLY=crash stops after the crash drill (boot, sessions, crash: what
# make test runs again with ESPROXY_BIN=build/asan/esproxy).
# UML_ONLY=rekey boots be2 alone (it holds the VIP) and runs only the rekey
# load; UML_REKEY_ROUNDS=N repeats that load N times on the same nodes.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=ui$$
chmod 755 "$LAB"
. "$ROOT/tests/interop/uml_lab.sh"
trap 'uml_cleanup; r=$?; if [ -n "${UML_KEEP:-}" ]; then echo "kept $LAB"; else rm -rf "$LAB"; fi; [ $r = 0 ] || exit 1' EXIT
trap 'exit 1' INT TERM
DEAD=300 PROBE=1000
# strongSwan stays silent on unknown IKE SPIs and the kernel drops ESP on
# unknown SPIs: without a data-path hint a dead node is found by the idle
# probe, so the detection bound is probe_interval + dead_after
DETECT=$((PROBE + DEAD))
# with traffic waiting for the dead node (the login loop below), a stall
# (stall_ms = dead_after / 2) starts the probe: found within STALL + DEAD
STALL=$((DEAD / 2)) RETRANSMIT=100
T_START=$(now_ms)

# ---- root filesystem (cached), network, two nodes ----
t=$(now_ms)
if uml_rootfs 2>"$LAB/rootfs.log"; then
    pass "UML rootfs ready in $(( $(now_ms) - t )) ms ($UML_ROOTFS)"
else
    fail "UML rootfs" "$(tail -n 5 "$LAB/rootfs.log")"; finish
fi
uml_net || { fail "namespaces" "cannot create"; finish; }
uml_mail
uml_common
if [ "${UML_ONLY:-}" = rekey ]; then
    nodes=be2 first=be2
    uml_node_conf be2 10.99.3.12 02:00:0a:63:03:0c 150 MASTER
else
    nodes="be1 be2" first=be1
    uml_node_conf be1 10.99.3.11 02:00:0a:63:03:0b 150 MASTER
    uml_node_conf be2 10.99.3.12 02:00:0a:63:03:0c 100 BACKUP
fi
t=$(now_ms)
uml_arp_watch
case " $nodes " in *" be1 "*) uml_boot be1 10.99.3.11 tap1 02:00:0a:63:03:0b ;; esac
uml_boot be2 10.99.3.12 tap2 02:00:0a:63:03:0c
ready=1
for n in $nodes; do uml_wait_ready "$n" 90 || ready=; done
if [ -n "$ready" ]; then
    pass "UML nodes $nodes ready (charon, dovecot, nginx, keepalived) in $(( $(now_ms) - t )) ms"
else
    fail "UML boot" "$(for n in $nodes; do tail -n 5 "$LAB/uml/$n/console"; done)"; finish
fi
grep -q "successfully loaded 1 connections" "$LAB/uml/$first/swanctl-load.log" ||
    { fail "swanctl load" "$(grep -v 'opening dir\|failed to load -' "$LAB/uml/$first/swanctl-load.log")"; finish; }
[ "$(uml_wait_master "$first" 0 10)" != 0 ] && pass "keepalived: VIP $UML_VIP on $first" ||
    { fail "keepalived" "$(tail -n 5 "$LAB/uml/$first/keepalived.log")"; finish; }

# ---- frontend up, kernel SAs inside the node ----
if [ -n "${UML_PCAP:-}" ]; then     # debugging: capture the bridge
    # whole packets: tshark decrypts the ESP with the frontend's key log (fe/keys.log)
    ip netns exec "$(uml_ns fe)" tcpdump -i br0 -U -s 0 -w "$LAB/br0.pcap" >/dev/null 2>&1 &
    uml_track $!
    sleep 0.5
fi
uml_frontend_conf "$LAB/fe/fe.ini"
sleep 2     # let the freshly booted nodes settle (UML is slow while daemons start)
if uml_frontend_start "$LAB/fe/fe.ini"; then
    pass "esproxy frontend: tunnel up with strongSwan on $first"
else
    fail "frontend tunnel" "$(tail -n 8 "$LAB/fe/fe.log"; tail -n 15 "$LAB/uml/$first/charon.log")"; finish
fi
fe_pid=$uml_frontend_pid
if [ "${UML_ONLY:-}" != rekey ]; then     # kernel SAs, sessions, failover drills: to the rekeys
uml_cmd be1 20 'ip xfrm state; echo "-- policies"; ip xfrm policy; echo "-- swanctl --list-sas"; swanctl --list-sas 2>&1 | grep -v "failed to load -"' \
    >"$LAB/xfrm1.txt"
echo "---- inside UML be1: ip xfrm state / policy, swanctl --list-sas"
sed 's/^/    /' "$LAB/xfrm1.txt"
n_tr=$(grep -c "mode transport" "$LAB/xfrm1.txt")
n_en=$(grep -c "encap type espinudp sport 4500 dport 4500" "$LAB/xfrm1.txt")
[ "$n_tr" -ge 2 ] && [ "$n_en" -ge 2 ] && grep -q "rfc4106(gcm(aes))" "$LAB/xfrm1.txt" &&
    pass "kernel SAs in be1: $n_tr x mode transport, $n_en x encap espinudp, rfc4106(gcm(aes))" ||
    fail "kernel SAs" "transport=$n_tr espinudp=$n_en"
grep -q "TRANSPORT-in-UDP" "$LAB/xfrm1.txt" && pass "strongSwan: CHILD_SA INSTALLED, TRANSPORT-in-UDP" ||
    fail "swanctl --list-sas" "no TRANSPORT-in-UDP"

# ---- real sessions through esproxy and kernel ESP ----
out=$(uml_client curl -s --max-time 10 http://10.99.4.1/health)
[ "$out" = "ok be1" ] && pass "HTTP (curl): GET /health -> '$out'" || fail "HTTP curl" "got '$out'"
# curl_mail URL PATTERN: one retry, shown in the output with the frontend's
# log of the failed attempt (a CI run once saw both time out after 10 s
# right after HTTP had passed; not reproduced in 6 runs since)
curl_mail() {
    out=$(uml_client curl -s --max-time 10 --user "$UML_USER:$UML_PASS" "$1")
    echo "$out" | grep -q "$2" && return 0
    echo "    first attempt at $1 got '$(echo "$out" | head -c 100)'; frontend log:"
    grep -v "liveness_hint\|event=suspect\|reason=hint\|probe_ok\|event=up held=0" "$LAB/fe/fe.log" | tail -n 12 | sed 's/^/      /'
    out=$(uml_client curl -s --max-time 20 --user "$UML_USER:$UML_PASS" "$1")
    echo "$out" | grep -q "$2" && retried=" (second attempt)"
}
retried=
curl_mail pop3://10.99.4.1/ "^1 " && pass "POP3 (curl): LIST -> '$(echo "$out" | tr -d '\r' | head -n 1)'$retried" ||
    fail "POP3 curl" "got '$out'"
retried=
curl_mail "imap://10.99.4.1/INBOX;UID=1" "Subject: uml lab message" &&
    pass "IMAP (curl): FETCH UID 1 -> $(echo "$out" | wc -c) bytes$retried" ||
    fail "IMAP curl" "got '$(echo "$out" | head -c 200)'"
out=$(uml_client python3 - <<'EOF'
import imaplib, poplib
m = imaplib.IMAP4("10.99.4.1", 143, timeout=10)
m.login("alice", "secret123")
typ, d = m.select("INBOX")
typ2, f = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
m.logout()
p = poplib.POP3("10.99.4.1", 110, timeout=10)
p.user("alice"); p.pass_("secret123")
n, size = p.stat()
r = p.retr(1)
p.quit()
print("imap", typ, d[0].decode(), f[0][1].decode().strip(), "pop3", n, size, len(r[1]))
EOF
)
echo "$out" | grep -q "^imap OK 1 Subject: uml lab message pop3 1 " && pass "python imaplib + poplib: $out" ||
    fail "python imaplib/poplib" "$out"
uml_cmd be1 20 'ip -s xfrm state' >"$LAB/xfrm2.txt"
echo "---- inside UML be1 after the sessions: ip -s xfrm state (lifetime current)"
grep -A1 "lifetime current" "$LAB/xfrm2.txt" | sed 's/^/    /'

fig() { sed -n "s/^$2=//p" "$LAB/$1.fig"; }
# fe_event_ms PATTERN SINCE_MS: host time (ms) of the frontend's first log
# line matching PATTERN at or after SINCE_MS; -1 if none
fe_event_ms() {
    grep "$1" "$LAB/fe/fe.log" | python3 -c '
import sys, datetime
since = int(sys.argv[1])
for l in sys.stdin:
    ts = l.split()[0][3:]
    ms = int(datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    if ms >= since:
        print(ms)
        break
else:
    print(-1)' "$2"
}
# drill LABEL ACTION NEWNODE: load until 5 s after the action (or the VIP's
# arrival, whichever is later), the action about 2 s in; ACTION sets t0
drill() {
    label=$1 action=$2 new=$3
    # --timeout 10: a normal session against dovecot in UML takes up to ~5 s,
    # and a login caught by the failover starts over after the recovery
    uml_client python3 "$ROOT/tests/lab/sessions.py" 10.99.4.1 60 "$LAB/$label.jsonl" --workers 2 --timeout 10 \
        --stop-file "$LAB/$label.stop" &
    load=$!
    # and a login loop: a POP3 session starts every UML_LOOP_MS whatever
    # the others do, so traffic toward the dead node is outbound-only (SYNs).
    # 200 ms by default: dovecot in a UML node keeps up with that next to
    # the other load (at 50 ms its logins queue for seconds on 2 cores)
    uml_client python3 "$ROOT/tests/lab/sessions.py" 10.99.4.1 60 "$LAB/$label-loop.jsonl" \
        --rate "$(python3 -c "print(1000 / ${UML_LOOP_MS:-200})")" \
        --protos pop3 --timeout 10 --stop-file "$LAB/$label.stop" 2>"$LAB/$label-loop.err" &
    loop=$!
    lab_wait_load "$LAB/$label.jsonl" "$LAB/$label-loop.jsonl"
    eval "$action"
    tv=$(uml_wait_garp "$new" "$((t0 - 100))" 6)
    [ "$tv" -gt "$t0" ] 2>/dev/null && te=$tv || te=$t0
    while [ "$(now_ms)" -lt $((te + 5000)) ]; do sleep 0.1; done
    touch "$LAB/$label.stop"
    wait "$load" "$loop"
    python3 "$ROOT/tests/lab/drill_analyze.py" "$LAB/$label-loop.jsonl" "$t0" "$tv" "$((STALL + DEAD))" >"$LAB/$label-loop.fig"
    # a frontend that died (a sanitizer report, see lab_san_check) ends the run
    lab_alive "$fe_pid" || { fail "$label: frontend" "exited: $(tail -n 3 "$LAB/fe/fe.log")"; finish; }
    python3 "$ROOT/tests/lab/drill_analyze.py" "$LAB/$label.jsonl" "$t0" "$tv" "$DETECT" >"$LAB/$label.fig"
    echo "---- $label: action at $t0, VIP GARP from $new at $tv (+$((tv - t0)) ms)"
    sed 's/^/    /' "$LAB/$label.fig"
}

# ---- crash drill: be1's link is cut (host side of its TAP) ----
crash_act() { ip -n "$(uml_ns fe)" link set tap1 down; t0=$(now_ms); }
drill crash crash_act 02:00:0a:63:03:0c
crash_r=$(fig crash recovery_ms) crash_v=$(fig crash from_vip_ms)
# bound: 2500 ms, or on a slow machine the idle probe's detection plus an
# IKE retransmission and two of this run's p90 sessions
crash_b=$((DETECT + RETRANSMIT + 2 * $(fig crash session_p90_ms)))
[ "$crash_b" -lt 2500 ] && crash_b=2500
[ "$crash_r" -ge 0 ] && [ "$crash_r" -le "$crash_b" ] && pass "crash: node cut off -> first successful session ${crash_r} ms (bound $crash_b)" ||
    fail "crash recovery" "${crash_r} ms (bound $crash_b)"
[ "$(fig crash inflight_late)" = 0 ] && pass "crash: no in-flight session hung (failed within probe_interval + dead_after + p90 + 1 s, or resumed and finished within the recovery + the slowest other session + p90 + 1 s)" ||
    fail "crash: hanging sessions" "$(fig crash inflight_late) late: $(fig crash inflight_late_detail)"
nf=$(fig crash new_failed) nt=$(fig crash new_total)
[ $((nf * 50)) -le "$nt" ] && pass "crash: $nf of $nt sessions opened during the failover failed (bound 2%)" ||
    fail "crash: new sessions failed" "$(fig crash new_failed) of $(fig crash new_total): $(fig crash errors)"
# The login loop (issue 15): outbound-only traffic toward the cut-off node
# must be noticed by the stall, not by the idle probe. Bounds from the
# configuration and this run: detection STALL + DEAD, or the VIP move if
# later, plus an IKE retransmission and two of the loop's p90 sessions.
echo "---- crash, login loop (a POP3 session every ${UML_LOOP_MS:-200} ms):"
sed 's/^/    /' "$LAB/crash-loop.fig"
lr=$(fig crash-loop recovery_ms) lv=$(fig crash-loop from_vip_ms) lp90=$(fig crash-loop session_p90_ms)
move=$((tv - t0)); det=$((STALL + DEAD)); [ "$move" -gt "$det" ] && later=$move || later=$det
lb=$((later + RETRANSMIT + 2 * lp90))
[ "$det" -gt "$move" ] && lvb=$((det - move + RETRANSMIT + 2 * lp90)) || lvb=$((RETRANSMIT + 2 * lp90))
target="issue 15 targets 1000 / 500 ms: $([ "$lr" -le 1000 ] && [ "$lv" -le 500 ] && echo met || echo missed)"
# The time to the first success is printed, not judged: a UML node's POP3
# sessions take seconds on a busy host (p90 above), and the first success
# is whichever slow session ends first. Judged: a recovery at all, no new
# session failed, none hung (below).
echo "    crash, login loop: death -> first success ${lr} ms (expected about $lb = max(stall+dead_after $det, VIP move $move) + retransmit + 2 x p90 $lp90), VIP arrival -> first success ${lv} ms (about $lvb); $target"
[ "$lr" -ge 0 ] && [ "$(fig crash-loop new_failed)" = 0 ] &&
    pass "crash, login loop: recovered, none of $(fig crash-loop new_total) sessions started after the cut failed" ||
    fail "crash, login loop" "recovery ${lr} ms, $(fig crash-loop new_failed) of $(fig crash-loop new_total) new sessions failed: $(fig crash-loop errors)"
# The frontend's own timeline (its log, host clock): the dead node noticed
# under outbound-only traffic within stall + dead_after, counted from the
# first send after the cut (the login loop sends one at least every
# UML_LOOP_MS), then the held sessions released at once.
cdown=$(fe_event_ms "from=suspect to=down" "$t0") cup=$(fe_event_ms "to=up reason=established" "$t0")
crel=$(fe_event_ms "event=held_sessions_released" "$t0")
echo "    frontend log: cut -> tunnel down $((cdown - t0)) ms, -> up with be2 $((cup - t0)) ms, held sessions released $((crel - t0)) ms"
loop_ms=${UML_LOOP_MS:-200}
[ "$cdown" -ge "$t0" ] && [ $((cdown - t0)) -le $((STALL + DEAD + loop_ms)) ] &&
    pass "crash, login loop: the frontend declared the node dead $((cdown - t0)) ms after the cut (bound stall $STALL + dead_after $DEAD + loop interval $loop_ms)" ||
    fail "crash, login loop: detection" "tunnel down $((cdown - t0)) ms after the cut (bound $((STALL + DEAD + loop_ms)))"
# this run's IKE set-up with a UML node that has the VIP (the graceful
# bound below uses it): from the crash's re-key to the tunnel up
crash_ike=$((cup - cdown)); [ "$crash_ike" -gt 0 ] 2>/dev/null || crash_ike=0
# No session hung: a session held during the failover ends, after the
# release, within what the slowest session started after the release took
# (dovecot in a UML node queues the released logins with the new ones) plus
# the run's p90; none in flight at the cut late (drill_analyze.py).
set -- $(python3 - "$LAB/crash-loop.jsonl" "$t0" "$crel" <<'EOF'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t0, rel = int(sys.argv[2]), int(sys.argv[3])
held = [x for x in r if t0 <= x["start"] < rel]
later = [x for x in r if x["start"] >= rel and x["ok"]]
print(len(held), max((x["end"] - rel for x in held), default=0),
      max((x["end"] - x["start"] for x in later), default=0))
EOF
)
hn=$1 ht=$2 hl=$3
[ "$crel" -ge "$t0" ] && [ "$(fig crash-loop inflight_late)" = 0 ] && [ "$ht" -le $((hl + lp90)) ] &&
    pass "crash, login loop: no session hung ($hn started before the release ended within ${ht} ms of it; bound: slowest later session $hl + p90 $lp90; none in flight late)" ||
    fail "crash, login loop: hung sessions" "$hn held ended up to ${ht} ms after the release (bound $((hl + lp90))), in flight late $(fig crash-loop inflight_late)"
out=$(uml_client curl -s --max-time 5 http://10.99.4.1/health)
[ "$out" = "ok be2" ] && pass "crash: now served by be2 ('$out')" || fail "crash: be2 serves" "got '$out'"
if [ "${UML_ONLY:-}" = crash ]; then
    echo "    crash, node death -> first successful session: UML ${crash_r} ms (VIP arrival -> success ${crash_v} ms)"
    echo "    total run time: $(( $(now_ms) - T_START )) ms"
    finish
fi

# ---- be1 returns: its link comes back and flaps (keepalived: FAULT, then
# it preempts the VIP with GARP); the frontend follows ----
t=$(now_ms)
ip -n "$(uml_ns fe)" link set tap1 up
uml_cmd be1 10 'ip link set eth0 down; sleep 0.2; ip link set eth0 up' >/dev/null
i=0; out=
while [ $i -lt 50 ]; do
    out=$(uml_client curl -s --max-time 2 http://10.99.4.1/health)
    [ "$out" = "ok be1" ] && break
    sleep 0.2; i=$((i + 1))
done
[ "$out" = "ok be1" ] && pass "be1 back: VIP preempted, frontend followed in $(( $(now_ms) - t )) ms" ||
    fail "be1 back" "got '$out'"
sleep 1.5

# ---- graceful drill: charon shutdown on be1 (DELETE) + keepalived releases the VIP ----
# t0 = the frontend receives strongSwan's DELETE (host clock; UML's clock may be off)
graceful_act() {
    n0=$(grep -c "reason=delete" "$LAB/fe/fe.log")
    ta=$(now_ms)
    # the administrator's order: stop IPsec (charon sends DELETE while it
    # still has the VIP), then let keepalived release the VIP
    uml_cmd_async be1 'c=$(cat /run/charon.pid.lab); kill -TERM $c; while kill -0 $c 2>/dev/null; do sleep 0.02; done; kill -TERM $(cat /run/keepalived.pid.lab)'
    # charon's shutdown inside a busy UML node can take seconds (7 s once)
    i=0; while [ "$(grep -c "reason=delete" "$LAB/fe/fe.log")" = "$n0" ] && [ $i -lt 750 ]; do sleep 0.02; i=$((i + 1)); done
    [ "$(grep -c "reason=delete" "$LAB/fe/fe.log")" = "$n0" ] && { t0=$(now_ms); return; }   # no DELETE: checked below
    t0=$(fe_event_ms "reason=delete" "$ta")
}
drill graceful graceful_act 02:00:0a:63:03:0c
gr_v=$(fig graceful from_vip_ms) gr_r=$(fig graceful recovery_ms)
gr_v=${gr_v:-99999}
# Bound: 1000 ms, or, when every looping client was still busy in a session
# caught by the move (a slow UML node), the first one free after the VIP
# arrived plus two of the run's p90 sessions and the IKE retransmission
# ladder (4 x retransmit_ms): a client that is busy starts nothing new.
# A client free before the VIP arrived counts from the VIP.
gr_free=$(( $(fig graceful first_free_ms) - (tv - t0) ))
[ "$gr_free" -lt 0 ] && gr_free=0
# The IKE set-up itself takes what it took in this run's crash drill
# (charon in a busy UML node: 0.1-1 s).
gr_b=$((gr_free + 4 * RETRANSMIT + crash_ike + 2 * $(fig graceful session_p90_ms)))
[ "$gr_b" -lt 1000 ] && gr_b=1000
[ "$gr_v" -ge -1000 ] && [ "$gr_v" -le "$gr_b" ] &&
    pass "graceful: VIP arrival -> first successful session ${gr_v} ms (bound $gr_b: 1000, or first client free ${gr_free} ms after the VIP + 4 x retransmit + IKE set-up $crash_ike + 2 x p90)" ||
    fail "graceful from VIP" "${gr_v} ms (bound $gr_b; first client free ${gr_free} ms after the VIP)"
[ "$(grep -c "reason=delete" "$LAB/fe/fe.log")" -gt "$n0" ] && pass "graceful: the frontend re-keyed on strongSwan's DELETE" ||
    fail "graceful DELETE" "$(grep tunnel_state "$LAB/fe/fe.log" | tail -n 3)"
[ "$(fig graceful new_failed)" = 0 ] && pass "graceful: no new session failed" ||
    fail "graceful: new sessions failed" "$(fig graceful new_failed): $(fig graceful errors)"

else
    # a freshly booted node is slow at first: in 3 boots the first 34 s of
    # load had a mail session tail of 4.6-5.6 s, the next ones 1.0-1.9 s. The
    # full run's drills warm it before the rekeys; here a short load does.
    uml_client python3 "$ROOT/tests/lab/sessions.py" 10.99.4.1 10 "$LAB/warmup.jsonl" --workers 2
fi  # UML_ONLY != rekey

# ---- rekeys initiated by strongSwan under load (short lifetimes on be2) ----
uml_swanctl_conf be2 24s 10s
n0=$(grep -c "event=tunnel name=main event=up" "$LAB/fe/fe.log")
uml_cmd be2 20 'swanctl --load-all --file /lab/be2/swanctl.conf >/dev/null 2>&1; swanctl --terminate --ike fe >/dev/null 2>&1' >/dev/null
i=0; while [ "$(grep -c "event=tunnel name=main event=up" "$LAB/fe/fe.log")" = "$n0" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.5
# esp_counters FILE: what a lossy switch of SAs shows: the node's XFRM
# errors (ESP on an SPI it does not hold, bad ICV, replay, ...: the sum of
# /proc/net/xfrm_stat), ESP on an SPI the frontend does not hold, and the
# node's TCP retransmissions
esp_counters() {
    uml_cmd be2 20 'cat /proc/net/xfrm_stat; grep "^Tcp:" /proc/net/snmp' | awk '
        /^Xfrm/ { x += $2 }
        /^Tcp:/ { if (!h) { for (i = 2; i <= NF; i++) col[$i] = i; h = 1 } else r = $col["RetransSegs"] }
        END { printf "node_xfrm_errors=%d\nnode_tcp_retrans=%d\n", x, r }' >"$1"
    ip netns exec "$(uml_ns fe)" "$ESPROXY_BIN" status --json -s "$LAB/fe/control.sock" |
        python3 -c 'import json, sys; print("fe_unknown_spi=%d" % json.load(sys.stdin)["esp_sas"]["unknown_spi"])' >>"$1"
}
cdelta() { echo $(( $(sed -n "s/^$1=//p" "$3") - $(sed -n "s/^$1=//p" "$2") )); }   # NAME BEFORE AFTER

# rekey_round R: 34 s of sessions while strongSwan rekeys; files $LAB/rekeyR.*
rekey_round() {
    r=$LAB/rekey$1
    esp_counters "$r.c0"
    mark=$(wc -l <"$LAB/uml/be2/charon.log")
    uml_client python3 "$ROOT/tests/lab/sessions.py" 10.99.4.1 34 "$r.jsonl" --workers 2
    tail -n +"$mark" "$LAB/uml/be2/charon.log" >"$r.charon"
    esp_counters "$r.c1"
    ck=$(grep -c "generating CREATE_CHILD_SA request [0-9]* \[.*REKEY_SA" "$r.charon")
    ik=$(grep -c "generating CREATE_CHILD_SA request [0-9]* \[ SA No KE \]" "$r.charon")
    # rekey moments on the host clock: the frontend's "rekeyed" log lines
    grep "event=rekeyed" "$LAB/fe/fe.log" | python3 -c '
import sys, datetime
for l in sys.stdin:
    ts = l.split()[0][3:]
    print(int(datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
' >"$r.times"
    python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t0, t1 = min(x["start"] for x in r), max(x["end"] for x in r)
rk = [int(l) for l in open(sys.argv[2]) if t0 <= int(l) <= t1]
bad = [x for x in r if not x["ok"]]
# in flight at a rekey, or opened within a second after it
at = [x for x in bad if any(x["start"] - 1000 <= t <= x["end"] for t in rk)]
print("total=%d" % len(r)); print("failed=%d" % len(bad)); print("rekeys_seen=%d" % len(rk))
print("failed_at_rekey=%d" % len(at))
for p in ("pop3", "imap", "http"):
    d = sorted(x["end"] - x["start"] for x in r if x["proto"] == p and x["ok"])
    if d: print("%s: %d ok, p50 %d ms, p99 %d ms, max %d ms" % (p, len(d), d[len(d) // 2], d[len(d) * 99 // 100], d[-1]))
for x in bad[:5]:
    near = min(rk, key=lambda t: abs(t - x["start"])) if rk else x["start"]
    print("error=%s start=%+d end=%+d ms from the nearest rekey: %s" %
          (x["proto"], x["start"] - near, x["end"] - near, x["err"][:80]))
' "$r.jsonl" "$r.times" >"$r.fig"
    echo "---- rekeys, round $1 (strongSwan on be2: IKE rekey_time 24 s, CHILD rekey_time 10 s; 34 s of load)"
    grep "CREATE_CHILD_SA\|rekey\|CHILD_SA mail{[0-9]*} established" "$r.charon" | sed 's/^/    /'
    sed 's/^/    /' "$r.fig"
    rf=$(sed -n 's/^failed=//p' "$r.fig") rt=$(sed -n 's/^total=//p' "$r.fig")
    ra=$(sed -n 's/^failed_at_rekey=//p' "$r.fig") rs=$(sed -n 's/^rekeys_seen=//p' "$r.fig")
    [ "$ck" -ge 3 ] && [ "$ik" -ge 1 ] && pass "rekey $1: strongSwan initiated $ck CHILD_SA rekeys and $ik IKE_SA rekey(s)" ||
        fail "rekey $1 count" "CHILD $ck (want >= 3), IKE $ik (want >= 1)"
    # a rekey must not cost a single packet: the counters of ESP that went to
    # an SA the receiver does not hold (yet, or any more) stay where they were
    xe=$(cdelta node_xfrm_errors "$r.c0" "$r.c1") us=$(cdelta fe_unknown_spi "$r.c0" "$r.c1")
    echo "    ESP lost: node XFRM errors +$xe, frontend unknown SPI +$us; node TCP retransmissions +$(cdelta node_tcp_retrans "$r.c0" "$r.c1")"
    [ "$xe" = 0 ] && [ "$us" = 0 ] && pass "rekey $1: no ESP packet lost in either direction across the rekeys" ||
        fail "rekey $1: ESP lost" "node XFRM errors +$xe, frontend unknown SPI +$us"
    # nor a single session: none in flight at one of the $rs rekeys the
    # frontend saw (or opened within 1 s after it), none at all in the load
    [ "$rs" -ge 4 ] && [ "$ra" = 0 ] && pass "rekey $1: no session failed across the $rs rekeys the frontend saw" ||
        fail "rekey $1 sessions" "$ra failed at a rekey ($rs rekeys seen)"
    [ "$rt" -gt 0 ] && [ "$rf" = 0 ] && pass "rekey $1: $rt sessions during 34 s of rekeys, none failed" ||
        fail "rekey $1: sessions" "$rf of $rt failed"
}
round=1
while [ "$round" -le "${UML_REKEY_ROUNDS:-1}" ]; do
    rekey_round "$round"
    round=$((round + 1))
done
out=$(uml_client curl -s --max-time 5 http://10.99.4.1/health)
[ "$out" = "ok be2" ] && pass "after the rekeys: HTTP through the rekeyed SAs ('$out')" || fail "after rekeys" "got '$out'"

if [ "${UML_ONLY:-}" != rekey ]; then
    echo "---- crash / graceful failover: strongSwan + kernel ESP nodes (UML) vs esproxy backend role"
    echo "    crash, node death -> first successful session:  UML ${crash_r} ms (VIP arrival -> success ${crash_v} ms)"
    echo "                                                     backend role (README, failover_lab.sh): 300 ms (7-9 ms after VIP)"
    echo "    graceful, VIP arrival -> first successful session: UML ${gr_v} ms (action -> success ${gr_r} ms)"
    echo "                                                     backend role (README, failover_lab.sh): about 35 ms"
fi
echo "    total run time: $(( $(now_ms) - T_START )) ms"

finish
