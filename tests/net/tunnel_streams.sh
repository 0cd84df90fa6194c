#!/bin/sh
# Tunnel streams between two processes through real ESP-in-UDP on
# 127.0.0.1, no root: build/rel/tools/tunnel_peer plays the backend
# (listeners) and the frontend (one scenario per run). SAs come from static
# test keys (IKE is not ready). The 10,000-stream run uses the ASan build
# of the tool (build/asan/tools/tunnel_peer) on both sides, LSan on.
# Prints one PASS/FAIL line per check; exits non-zero on any failure.
set -u
root=${ESPROXY_ROOT:-$(pwd)}
rel=$root/build/rel/tools/tunnel_peer
asan=$root/build/asan/tools/tunnel_peer
mb=${TUNNEL_STREAMS_MB:-200}
many=${TUNNEL_STREAMS_MANY:-10000}
work=$(mktemp -d /tmp/esproxy-tunnel-streams.XXXXXX)
base=$((30000 + ($$ % 1000) * 8))
srv_pid=
failed=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

server_stop() {
    [ -n "$srv_pid" ] || return 0
    kill "$srv_pid" 2>/dev/null
    i=0
    while kill -0 "$srv_pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$srv_pid" 2>/dev/null
    wait "$srv_pid" 2>/dev/null
    srv_rc=$?
    srv_pid=
}
cleanup() { server_stop; [ -n "${TUNNEL_STREAMS_KEEP:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT INT TERM

# server_start TOOL LOG: backend listeners on UDP $base+1, peer $base.
server_start() {
    "$1" b $((base + 1)) $base serve >"$2" 2>&1 &
    srv_pid=$!
    i=0
    while ! grep -q '^serving' "$2" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}

# client NAME TIMEOUT TOOL MODE [ARG]: run a frontend scenario.
client() {
    name=$1 secs=$2 tool=$3
    shift 3
    timeout "$secs" "$tool" a $base $((base + 1)) "$@" >"$work/$name.out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q "^ok $1" "$work/$name.out"; then
        pass "tunnel_streams.$name $(grep -E "^($1|many|up|down|timeout|stall|slowread|lost)" "$work/$name.out" | head -2 | tr '\n' ' ')"
    else
        fail "tunnel_streams.$name" "rc=$rc $(grep -E '^fail|ERROR|Sanitizer' "$work/$name.out" | head -3 | tr '\n' ' ')"
    fi
}

# `make test` builds the release tools; the ASan one may need building.
[ -x "$asan" ] || make -s -C "$root" build/asan/tools/tunnel_peer >"$work/make.log" 2>&1
for t in "$rel" "$asan"; do
    if [ ! -x "$t" ]; then
        fail tunnel_streams.tool "missing $t (make $(echo "$t" | sed "s|$root/||"))"
        exit 1
    fi
done

bytes=$((mb * 1000000))
server_start "$rel" "$work/srv.log"
client up_${mb}MB 240 "$rel" up $bytes
client down_${mb}MB 240 "$rel" down $bytes
client halfclose 30 "$rel" halfclose
client abort 30 "$rel" abort
client connect_timeout 30 "$rel" timeout 300
client tunnel_lost 60 "$rel" lost 2000
client backpressure_stalled_reader 60 "$rel" stall 16000000
client backpressure_stopped_consumer 60 "$rel" slowread 16000000
sleep 0.3
server_stop
n=$(grep -c '^halfclose-peer ok' "$work/srv.log")
[ "$n" -ge 2 ] && pass tunnel_streams.peer_sees_data_after_its_fin \
    || fail tunnel_streams.peer_sees_data_after_its_fin "server log: $(grep halfclose "$work/srv.log" | tr '\n' ' ')"
grep -q '^sink reset' "$work/srv.log" && pass tunnel_streams.our_abort_resets_peer \
    || fail tunnel_streams.our_abort_resets_peer "server saw no reset"
held=$(sed -n 's/^stall held=//p' "$work/srv.log" | head -1)
if [ -n "$held" ] && [ "$held" -le 1048576 ] && [ "$held" -ge 524288 ]; then
    pass "tunnel_streams.stalled_reader_holds_at_most_one_window held=$held"
else
    fail tunnel_streams.stalled_reader_holds_at_most_one_window "held=${held:-none} (want 512 KiB..1 MiB)"
fi
echo "server: $(grep '^serve done' "$work/srv.log")"

# 10,000 concurrent streams, both sides under ASan+LSan.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1
server_start "$asan" "$work/srv_asan.log"
client many_$many 240 "$asan" many $many
server_stop
if grep -q 'Sanitizer' "$work/srv_asan.log" || [ "$srv_rc" -ne 0 ]; then
    fail tunnel_streams.server_asan_clean "rc=$srv_rc $(grep -m2 'Sanitizer' "$work/srv_asan.log")"
else
    pass tunnel_streams.server_asan_clean
fi
[ "$failed" -eq 0 ]
