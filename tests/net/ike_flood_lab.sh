#!/bin/sh
# An IKE_SA_INIT flood from one address never delays a legitimate initiator
# at another (issue 16 item 3, ipsec/ike_guard.c). Namespaces on one bridge:
# a backend esproxy (10.99.41.100), a frontend (10.99.41.10) and a flooder
# (10.99.41.66) running two senders (tests/lab/ike_flood.py), 400 IKE_SA_INIT
# requests a second each, fresh SPIs, never answering a COOKIE.
#
# The bound comes from this run: the frontend is started three times without
# the flood (its tunnel-up time, from `to=connecting` to `event=up` in its
# log, is the reference), then three times during the flood; each must come
# up within 2 x the slowest reference + retransmit_ms (one lost first
# message). The replies per second the senders saw are printed and must stay
# within the backend's per-source budget (10 a second, burst 10, plus the 2
# IKE_SA_INIT responses an address gets before it must return cookies; one
# second more for the senders' clocks). FLOOD_RATE sets each sender's rate.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=fl$$
. "$ROOT/tests/lab/lib.sh"
ATK=$(lab_ns atk)
BE_ADDR=10.99.41.100 FE_ADDR=10.99.41.10 ATK_ADDR=10.99.41.66
RATE=${FLOOD_RATE:-400}                 # per sender
RETRANSMIT=100                          # the frontend's retransmit_ms (lab default)
REPLIES_PER_SRC=10 BURST=10 HALF_OPEN_FREE=2    # the backend's defaults (README, ike_guard.c)
flood_exit() {
    if [ "$failures" != 0 ]; then
        keep=$ROOT/build/test-output/ike_flood_lab
        rm -rf "$keep" && mkdir -p "$keep" && cp -r "$LAB/fe" "$LAB/be1" "$LAB"/flood.* "$keep/" 2>/dev/null
        echo "---- logs kept in ${keep#"$ROOT"/}"
    fi
    ip netns del "$ATK" 2>/dev/null
    lab_exit
}
trap flood_exit EXIT
chmod 755 "$LAB"
t_lab=$(now_ms)

# ---- the network: sw (bridge), be1, fe, atk; addresses in 10.99.41.0/24 only ----
net() {
    ip netns add "$(lab_ns sw)" && ip -n "$(lab_ns sw)" link add br0 type bridge &&
        ip -n "$(lab_ns sw)" link set br0 up || return 1
    for n in "be1 $BE_ADDR" "fe $FE_ADDR" "atk $ATK_ADDR"; do
        set -- $n
        ip netns add "$(lab_ns "$1")" &&
            ip link add eth0 netns "$(lab_ns "$1")" type veth peer name "p-$1" netns "$(lab_ns sw)" &&
            ip -n "$(lab_ns sw)" link set "p-$1" master br0 up &&
            ip -n "$(lab_ns "$1")" addr add "$2/24" dev eth0 &&
            ip -n "$(lab_ns "$1")" link set eth0 up && ip -n "$(lab_ns "$1")" link set lo up || return 1
    done
}
net || { fail "lab network" "cannot create namespaces"; finish; }

mkdir -p "$LAB/fe"
LAB_VIP=$BE_ADDR lab_backend_conf be1     # the lab's backend config (and $LAB/psk), at our address
lab_backend be1
[ -S "$LAB/be1/control.sock" ] && pass "backend up at $BE_ADDR ($ESPROXY_BIN)" ||
    { fail "backend" "$(tail -n 5 "$LAB/be1/backend.log")"; finish; }
CONF_RETRANSMIT_MS=$RETRANSMIT conf_frontend "$LAB/fe" "$FE_ADDR" "$BE_ADDR" "$LAB/psk" "$FE_ADDR" >"$LAB/fe/fe.ini"

# up_ms LOG: from the tunnel's first `to=connecting` to its first `event=up`
up_ms() {
    python3 - "$1" <<'EOF'
import re, sys, datetime
t = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"ts=(\S+)Z ", line)
    if not m:
        continue
    at = datetime.datetime.fromisoformat(m.group(1)).timestamp() * 1000
    if "event=tunnel_state tunnel=main" in line and "to=connecting" in line:
        t.setdefault("c", at)
    if "event=tunnel name=main event=up" in line:
        t.setdefault("u", at)
print(round(t["u"] - t["c"]) if "c" in t and "u" in t else -1)
EOF
}

# start_fe LABEL: the frontend until its tunnel is up (at most 15 s), then stopped; prints the up time
start_fe() {
    if ! lab_frontend_start "$LAB/fe/fe.ini"; then
        fail "$1: frontend tunnel" "not up within 15 s: $(grep -E 'tunnel_state|ike_failed|cookie' "$LAB/fe/fe.log" | tail -n 3)"
        ms=-1
    else
        ms=$(up_ms "$LAB/fe/fe.log")
    fi
    kill -TERM "$lab_frontend_pid" 2>/dev/null
    i=0; while lab_alive "$lab_frontend_pid" && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    kill -9 "$lab_frontend_pid" 2>/dev/null
    wait "$lab_frontend_pid" 2>/dev/null
    lab_esproxy_pids=$(echo "$lab_esproxy_pids" | sed "s/ $lab_frontend_pid\b//")
    lab_pids=$(echo "$lab_pids" | sed "s/ $lab_frontend_pid\b//")
    up=$ms
}

# ---- the reference: three starts without the flood ----
ref_max=0 refs=
for run in 1 2 3; do
    start_fe "reference $run"
    refs="$refs $up"
    [ "$up" -gt "$ref_max" ] && ref_max=$up
done
case "$refs" in *-1*) fail "reference" "the tunnel did not come up without a flood:$refs ms"; finish ;; esac
bound=$((2 * ref_max + RETRANSMIT))
pass "reference tunnel-up times without the flood:$refs ms (bound for the flood runs: 2 x $ref_max + $RETRANSMIT = $bound ms)"

# ---- the flood: two senders at one address ----
metric() {  # name (with labels, as printed): the backend's value now
    "$ESPROXY_BIN" status --prometheus -s "$LAB/be1/control.sock" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
t_flood=$(now_ms)
for s in 1 2; do
    ip netns exec "$ATK" python3 "$ROOT/tests/lab/ike_flood.py" --src "$ATK_ADDR" --dst "$BE_ADDR" --rate "$RATE" \
        --seconds 120 --stop "$LAB/flood.stop" >"$LAB/flood.$s" 2>&1 &
    eval "flood_pid_$s=$!"
    lab_track $!
done
sleep 1     # the flood in its steady state: its address holds its half-open SAs, COOKIEs are demanded
in0=$(metric 'esproxy_ike_messages_total{direction="in"}')
sleep 1
in1=$(metric 'esproxy_ike_messages_total{direction="in"}')
echo "---- the backend receives $((in1 - in0)) IKE messages a second from the flood (2 senders x $RATE)"
flood_ups=
for run in 1 2 3; do
    start_fe "flood $run"
    flood_ups="$flood_ups $up"
    if [ "$up" -ge 0 ] && [ "$up" -le "$bound" ]; then
        pass "during the flood, start $run: tunnel up in $up ms (bound $bound ms; reference$refs ms)"
    else
        fail "during the flood, start $run: tunnel-up time" "$up ms, bound $bound ms (reference$refs ms)"
    fi
done
touch "$LAB/flood.stop"
for s in 1 2; do eval "wait \$flood_pid_$s"; done
t_end=$(now_ms)
lab_pids=$(for p in $lab_pids; do [ "$p" = "$flood_pid_1" ] || [ "$p" = "$flood_pid_2" ] || echo "$p"; done)

# ---- what the flood got ----
fig() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
total=0 sent=0 secs=0
for s in 1 2; do
    echo "---- sender $s: $(cat "$LAB/flood.$s")"
    total=$((total + $(fig "$LAB/flood.$s" replies)))
    sent=$((sent + $(fig "$LAB/flood.$s" sent)))
    secs=$(awk -v a="$secs" -v b="$(fig "$LAB/flood.$s" seconds)" 'BEGIN { print (b > a ? b : a) }')
done
rate=$(awk -v r="$total" -v s="$secs" 'BEGIN { printf "%.1f", r / s }')
# one second of budget more for the senders' clocks against the backend's
allowed=$(awk -v s="$secs" -v r=$REPLIES_PER_SRC -v b=$BURST -v h=$HALF_OPEN_FREE 'BEGIN { printf "%d", r * (s + 1) + b + h }')
echo "---- the flood: $sent IKE_SA_INIT requests in $secs s from $ATK_ADDR; $total replies, $rate replies/s at the senders"
[ "$sent" -gt 0 ] && [ "$total" -le "$allowed" ] &&
    pass "the flood's replies: $total in $secs s ($rate/s), within the per-source budget ($allowed)" ||
    fail "the flood's replies" "$total in $secs s ($rate/s) for $sent requests, more than the per-source budget allows ($allowed)"
lim=$(metric 'esproxy_ike_replies_limited_total{limit="source"}')
[ "$lim" -gt 0 ] && pass "backend: replies limited at the source counted ($lim)" ||
    fail "backend: replies limited" "esproxy_ike_replies_limited_total{limit=\"source\"} is $lim"
echo "---- backend counters: half_open $(metric esproxy_ike_half_open), cookies_sent $(metric esproxy_ike_cookies_sent_total)," \
    "replies limited source $lim total $(metric 'esproxy_ike_replies_limited_total{limit="total"}')," \
    "half-open refused source $(metric 'esproxy_ike_half_open_refused_total{limit="source"}')" \
    "total $(metric 'esproxy_ike_half_open_refused_total{limit="total"}'), dropped $(metric esproxy_ike_dropped_total)"
n_log=$(grep -c 'event=ike_unauth_limited' "$LAB/be1/backend.log")
max_log=$(( (t_end - t_flood) / 10000 + 1 ))
[ "$n_log" -ge 1 ] && [ "$n_log" -le "$max_log" ] &&
    pass "backend log: $n_log ike_unauth_limited lines in $(( (t_end - t_flood) / 1000 )) s of flood (one per 10 s at most)" ||
    fail "backend log" "$n_log ike_unauth_limited lines in $((t_end - t_flood)) ms (at most $max_log)"
lab_alive "$(eval echo "\$lab_backend_pid_be1")" && pass "backend still running" ||
    fail "backend" "exited: $(tail -n 3 "$LAB/be1/backend.log")"
echo "---- tunnel-up ms: reference$refs; during the flood$flood_ups; lab took $(( ($(now_ms) - t_lab) / 1000 )) s"
finish
