#!/bin/sh
# Forged input cannot cause a failover (issue 15, liveness rules 3 and 7 in
# ipsec/liveness.h). The namespace lab (tests/lab/lib.sh): a client, the
# frontend (`esproxy run`, speculative_rekey = yes), be1 holding the VIP with
# real dovecot and the backend role, and an attacker on the back-end segment
# (10.99.2.66). POP3 and IMAP sessions are logged in (spliced) through the
# frontend and kept open; then the attacker sends, from a raw socket
# (tests/lab/forge.py), first from its own address and then with the VIP's
# address spoofed, several hundred of each:
#   esp          ESP-in-UDP to the frontend's 4500 on random SPIs
#   invalid-spi  an unprotected INVALID_IKE_SPI under the live SPI_i/SPI_r
#   sk           an IKE message under the live SPIs with a garbage SK
#                payload, from another source port
# After each source the kept sessions must still answer and new logins
# work; at the end the IKE SA is the same one, the history has no `down` (a
# SUSPECT and a probe are allowed for the spoofed VIP only), the frontend
# never abandoned its SA, the backend still has an outbound ESP SA, and it
# saw no extra IKE SA from the third address and at most one per
# probe_interval_ms from the spoofed VIP. The waits count answered probes,
# not milliseconds. FORGED_KINDS="sk" (say) sends one kind alone.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=fg$$
. "$ROOT/tests/lab/lib.sh"
ATK=$(lab_ns atk)
ATK_ADDR=10.99.2.66
FE_ADDR=10.99.2.10
PROBE=${LAB_PROBE_MS:-1000}
COUNT=${FORGED_COUNT:-300}                          # datagrams per kind and source
KINDS=${FORGED_KINDS:-esp invalid-spi sk}           # a subset shows one kind's effect alone
OVER=$(awk -v p="$PROBE" 'BEGIN { print 3 * p / 1000 }')   # spread over 3 probe intervals
forged_exit() {
    # on a failure the logs stay under build/test-output/forged_lab/
    if [ "$failures" != 0 ]; then
        keep=$ROOT/build/test-output/forged_lab
        rm -rf "$keep" && mkdir -p "$keep" && cp -r "$LAB/fe" "$LAB/be1" "$LAB/hold" "$LAB"/s*.json "$keep/" 2>/dev/null
        echo "---- logs kept in ${keep#"$ROOT"/}"
    fi
    ip netns del "$ATK" 2>/dev/null
    lab_exit
}
trap forged_exit EXIT
chmod 755 "$LAB"
t_lab=$(now_ms)

lab_net || { fail "lab network" "cannot create namespaces"; finish; }
ip netns add "$ATK" &&
    ip link add eth0 netns "$ATK" type veth peer name p-atk netns "$(lab_ns sw)" &&
    ip -n "$(lab_ns sw)" link set p-atk master br0 up &&
    ip -n "$ATK" addr add "$ATK_ADDR/24" dev eth0 &&
    ip -n "$ATK" link set eth0 up && ip -n "$ATK" link set lo up ||
    { fail "attacker namespace" "cannot create it"; finish; }
lab_mail 2000
lab_node_start be1
lab_vip_add be1
mkdir -p "$LAB/fe"
lab_frontend_conf "$LAB/fe/fe.ini"
grep -q '^speculative_rekey = yes$' "$LAB/fe/fe.ini" && pass "frontend config: speculative_rekey = yes" ||
    fail "frontend config" "speculative_rekey is not on: $(grep speculative "$LAB/fe/fe.ini")"
lab_frontend_start "$LAB/fe/fe.ini" && pass "frontend up through the VIP on be1 ($ESPROXY_BIN)" ||
    { fail "frontend" "$(tail -n 5 "$LAB/fe/fe.log")"; finish; }
fe_pid=$lab_frontend_pid

# ---- helpers: the frontend's status and metrics through its control socket ----
status_json() { "$ESPROXY_BIN" status --json -s "$LAB/fe/control.sock" >"$1"; }
jget() {    # file expr: a Python expression over d (the status) and t (tunnel main)
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); t = d["tunnels"][0]
print(eval(sys.argv[2]))' "$1" "$2"
}
metric() {  # name (with labels, as printed): its value now
    "$ESPROXY_BIN" status --prometheus -s "$LAB/fe/control.sock" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
ike_in() { metric 'esproxy_ike_messages_total{direction="in"}'; }
history_count() {   # file to since_ms [until_ms]: history entries entering state `to` in that window
    jget "$1" "sum(1 for e in t.get('history', []) if e['to'] == '$2' and $3 <= e['at_ms'] <= ${4:-9e15})"
}
be_established() { cat "$LAB"/be1/backend.log* 2>/dev/null | grep -c 'event=ike_established'; }

# wait_answered N: until N more IKE messages reached the frontend (answered
# probes; the idle probe goes out every probe_interval_ms), at most 60 s
wait_answered() {
    base=$(ike_in); i=0
    while [ $(( $(ike_in) - base )) -lt "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    [ $(( $(ike_in) - base )) -ge "$1" ]
}

# sessions_check LABEL: the kept sessions answer, new logins work (forge.py hold)
hold_round=0
sessions_check() {
    hold_round=$((hold_round + 1))
    f=$LAB/hold/done.$hold_round
    echo "$1" >"$LAB/hold/go.$hold_round"
    # each check is bounded by the client's own socket timeout
    i=0; while [ ! -e "$f" ] && lab_alive $hold_pid && [ $i -lt 6000 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$f" ] || { fail "$1: sessions" "no answer from the client: $(tail -n 3 "$LAB/hold/out")"; return; }
    while read -r verdict rest; do    # bad LABEL: NAME: why
        [ "$verdict" = bad ] || continue
        r=${rest#*: }
        fail "${rest%%: *}: ${r%%: *}" "${r#*: }"
    done <"$f"
    [ "$(grep -c '^ok ' "$f")" = 10 ] &&
        pass "$1: the 2 kept POP3 (NOOP, STAT) and 2 kept IMAP sessions (NOOP, FETCH) answer; new POP3 and IMAP logins work"
}

# ---- the kept sessions ----
mkdir -p "$LAB/hold"
ip netns exec "$(lab_ns client)" python3 "$ROOT/tests/lab/forge.py" hold 10.99.1.1 "$LAB/hold" \
    >"$LAB/hold/out" 2>&1 &
hold_pid=$!
lab_track $hold_pid
i=0; while [ ! -s "$LAB/hold/ready" ] && lab_alive $hold_pid && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$LAB/hold/ready" ] || { fail "kept sessions" "not logged in: $(tail -n 3 "$LAB/hold/out")"; finish; }
status_json "$LAB/s0.json"
spliced=$(jget "$LAB/s0.json" "'%d pop3, %d imap' % (d['sessions']['pop3']['logged_in'], d['sessions']['imap']['logged_in'])")
[ "$spliced" = "2 pop3, 2 imap" ] && pass "kept sessions logged in and spliced: $spliced" ||
    fail "kept sessions" "frontend counts $spliced logged in"
ids0=$(jget "$LAB/s0.json" "t['sa']['spi_i'] + '/' + t['sa']['spi_r']")
spi_i=${ids0%/*} spi_r=${ids0#*/}
esp_in=$(jget "$LAB/s0.json" "t['sa']['esp_in']")
est0=$(be_established)
sessions_check "before the attack"
echo "---- IKE SA $ids0, inbound ESP SPI $esp_in; $COUNT datagrams per kind ($KINDS) and source over $OVER s each"

forge() {   # src kind [forge.py args]
    s=$1 k=$2; shift 2
    ip netns exec "$ATK" python3 "$ROOT/tests/lab/forge.py" send "$k" --src "$s" --dst "$FE_ADDR" \
        --count "$COUNT" --over "$OVER" "$@" >"$LAB/forge.out" 2>&1 ||
        fail "forge $k from $s" "$(tail -n 2 "$LAB/forge.out")"
}
attack() {  # src label: each kind, then two answered probes
    t=$(now_ms)
    for k in $KINDS; do
        case $k in
        esp) forge "$1" esp --avoid-spi "$esp_in" ;;
        invalid-spi) forge "$1" invalid-spi --spi-i "$spi_i" --spi-r "$spi_r" ;;
        sk) forge "$1" sk --spi-i "$spi_i" --spi-r "$spi_r" --sport 34500 ;;   # not the peer's 4500
        esac
    done
    t_sent=$(now_ms)
    # probes keep working: the SK messages from another port did not move the SA's peer port
    wait_answered 2 && pass "$2: 2 probes answered after the attack (frontend still reaches the peer)" ||
        fail "$2: probes" "no answer within 60 s after the attack: $(grep -E 'tunnel_state|peer_port' "$LAB/fe/fe.log" | tail -n 3)"
    lab_alive "$fe_pid" || { fail "$2: frontend" "exited: $(tail -n 3 "$LAB/fe/fe.log")"; finish; }
    echo "---- $2: sent in $((t_sent - t)) ms, 2 probes answered $(($(now_ms) - t_sent)) ms later"
}

# ---- from a third address: nothing may happen at all ----
t_atk=$(now_ms)
attack "$ATK_ADDR" "from $ATK_ADDR"
est1=$(be_established)
sessions_check "after forged input from $ATK_ADDR"
status_json "$LAB/s1.json"
n=$(history_count "$LAB/s1.json" suspect "$t_atk")
[ "$n" = 0 ] && [ "$est1" = "$est0" ] && pass "from $ATK_ADDR: no SUSPECT entry in the history, no extra IKE SA" ||
    fail "from $ATK_ADDR: reactions" "$n SUSPECT entries, $((est1 - est0)) extra IKE SAs (input from a third address is no hint)"

# ---- spoofed from the VIP: a short SUSPECT + probe (+ one speculative SA) per probe interval ----
t_vip=$(now_ms)
attack "$LAB_VIP" "spoofed from $LAB_VIP"
t_end=$(now_ms)
extra=$(( $(be_established) - est1 ))
allowed=$(( (t_end - t_vip) / PROBE + 1 ))
[ "$extra" -le "$allowed" ] &&
    pass "spoofed from $LAB_VIP: the backend saw $extra extra IKE SAs in $((t_end - t_vip)) ms (at most $allowed: one per probe interval, ${PROBE} ms)" ||
    fail "spoofed from $LAB_VIP: extra IKE SAs" "$extra in $((t_end - t_vip)) ms (at most $allowed)"
sessions_check "after forged input spoofed from $LAB_VIP"

# ---- the verdict: same SA, never down, nothing abandoned ----
status_json "$LAB/s2.json"
n_sus=$(history_count "$LAB/s2.json" suspect "$t_vip" "$t_end")
n_down=$(history_count "$LAB/s2.json" down "$t_atk")
[ "$n_down" = 0 ] && pass "history: no down entry ($n_sus suspect entries while the VIP was spoofed)" ||
    fail "history: down entries" "$n_down ($n_sus suspect): $(jget "$LAB/s2.json" "t.get('history', [])[-4:]")"
state=$(jget "$LAB/s2.json" "t['state']")
[ "$state" = up ] && pass "tunnel state up" || fail "tunnel state" "$state"
ids2=$(jget "$LAB/s2.json" "t['sa']['spi_i'] + '/' + t['sa']['spi_r'] if 'sa' in t else 'none'")
[ "$ids2" = "$ids0" ] && pass "same IKE SA before and after ($ids2)" || fail "IKE SA changed" "$ids0 -> $ids2"
lost=$(jget "$LAB/s2.json" "sum(v['tunnel_lost'] for v in d['sessions'].values())")
[ "$lost" = 0 ] && pass "frontend: no session lost its tunnel" || fail "frontend: sessions lost their tunnel" "$lost"
"$ESPROXY_BIN" status --json -s "$LAB/be1/control.sock" >"$LAB/be1.json"
be_esp=$(jget "$LAB/be1.json" "'%d in, %d out' % (d['esp_sas']['in'], d['esp_sas']['out'])")
[ "${be_esp#*, }" != "0 out" ] && pass "backend: ESP SAs $be_esp (it can still answer the frontend)" ||
    fail "backend: no outbound ESP SA" "$be_esp: the tunnel's data path is gone while its IKE SA answers probes"
bad_log=$(grep -E 'event=(tunnel_sa_abandoned|ike_peer_port_changed)' "$LAB/fe/fe.log" | head -n 2)
[ -z "$bad_log" ] && pass "frontend log: no tunnel_sa_abandoned, no ike_peer_port_changed" || fail "frontend log" "$bad_log"
echo "---- frontend counters: IKE dropped $(metric esproxy_ike_dropped_total)," \
    "in $(ike_in), out $(metric 'esproxy_ike_messages_total{direction="out"}');" \
    "ESP dropped unknown_spi $(metric 'esproxy_esp_dropped_total{reason="unknown_spi"}')," \
    "icv $(metric 'esproxy_esp_dropped_total{reason="icv"}');" \
    "hints ignored after a false alarm $(metric 'esproxy_tunnel_hints_ignored_total{tunnel="main"}');" \
    "backend: $(( $(be_established) - est0 )) IKE SAs established after the first"
touch "$LAB/hold/end"
echo "---- lab took $(( ($(now_ms) - t_lab) / 1000 )) s, the attack $(( (t_end - t_atk) / 1000 )) s"
finish
