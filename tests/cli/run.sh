#!/bin/sh
# `esproxy run`: starts on a valid config, answers `status`, stops cleanly on
# SIGTERM/SIGINT with exit 0 within 100 ms plus twice what `version` takes
# (same run); secrets never reach the log.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

SECRET=psk-value-that-must-never-be-logged-42
printf '%s\n' "$SECRET" >"$T/psk"
cat >"$T/fe.ini" <<INI
[esproxy]
role = frontend
log_level = debug
control = $T/control.sock

[tunnel main]
local = 127.0.0.1
peer = 127.0.0.2
udp_port = 14700
local_id = fe.test
peer_id = mail.test
psk_file = $T/psk

[listen imap]
address = 127.0.0.1:1143
protocol = imap
INI

# start BIN SIGNAL: run, wait for the control socket, signal, time the exit.
start_and_stop() {
    bin=$1 sig=$2 label=$3
    "$bin" run -c "$T/fe.ini" >"$T/out" 2>"$T/log" &
    pid=$!
    i=0
    while [ ! -S "$T/control.sock" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
    if [ ! -S "$T/control.sock" ]; then
        fail "$label starts" "no control socket after 3 s: $(cat "$T/log")"
        return
    fi
    pass "$label starts"
    if [ "$sig" = TERM ]; then
        "$ESPROXY" status -s "$T/control.sock" >"$T/status" 2>&1
        grep -q "role=frontend" "$T/status" && grep -q "^tunnel main: local 127.0.0.1 peer 127.0.0.2" "$T/status" \
            && pass "$label status" || fail "$label status" "$(cat "$T/status")"
        "$ESPROXY" status --json -c "$T/fe.ini" >"$T/status.json" 2>&1
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["role"]=="frontend" and d["tunnels"][0]["name"]=="main"' \
            "$T/status.json" && pass "$label status --json" || fail "$label status --json" "$(cat "$T/status.json")"
    fi
    # same-run reference: how long this binary takes just to start and exit
    # now (ASan's exit-time leak check and a busy machine both show there)
    r0=$(now_ms); "$bin" version >/dev/null; ref=$(( $(now_ms) - r0 ))
    bound=$((100 + 2 * ref))
    t0=$(now_ms)
    kill -"$sig" "$pid"
    wait "$pid"
    rc=$?
    t1=$(now_ms)
    pid=
    ms=$((t1 - t0))
    if [ "$rc" -eq 0 ] && [ "$ms" -le "$bound" ]; then
        pass "$label stops on SIG$sig in ${ms} ms with exit 0 (bound $bound: 100 + 2 x ${ref} ms to run 'version')"
    else
        fail "$label stops on SIG$sig" "exit $rc after ${ms} ms (bound $bound); log: $(tail -n 3 "$T/log")"
    fi
    [ ! -e "$T/control.sock" ] && pass "$label removes its control socket" || fail "$label removes its control socket" "still there"
    grep -q "event=stopped clean=yes" "$T/log" && pass "$label drained the loop" || fail "$label drained the loop" "$(tail -n 2 "$T/log")"
    if grep -q "$SECRET" "$T/log" "$T/out"; then fail "$label never logs the psk" "found in log"; else pass "$label never logs the psk"; fi
}

start_and_stop "$ESPROXY" TERM "run"
start_and_stop "$ESPROXY" INT "run (SIGINT)"
start_and_stop "$ROOT/build/asan/esproxy" TERM "run under ASan"
grep -q "ERROR: \(AddressSanitizer\|LeakSanitizer\)" "$T/log" && fail "ASan clean" "$(cat "$T/log")" || pass "ASan clean"

# A second instance on the same control socket refuses to start.
"$ESPROXY" run -c "$T/fe.ini" 2>"$T/log1" & pid=$!
i=0; while [ ! -S "$T/control.sock" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
"$ESPROXY" run -c "$T/fe.ini" 2>"$T/log2"; rc=$?
[ "$rc" -eq 1 ] && grep -q "event=control_failed" "$T/log2" && pass "second instance refused" \
    || fail "second instance refused" "exit $rc: $(cat "$T/log2")"
kill -TERM "$pid"; wait "$pid"; pid=

# UDP 4500 (here 14700) already in use: one clear line naming the cause, a
# non-zero exit below 128 (it used to segfault, exit 139), no sanitizer report.
python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 14700)); print(flush=True); time.sleep(30)' >"$T/busy" &
busy=$!
i=0; while [ ! -s "$T/busy" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
for bin in "$ESPROXY" "$ROOT/build/asan/esproxy"; do
    rm -f "$T/control.sock"
    "$bin" run -c "$T/fe.ini" >/dev/null 2>"$T/err"; rc=$?
    if [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ] &&
        grep -q 'event=tunnel_mgr_open_failed what=udp_socket address=127.0.0.1:14700 error="address already in use"' "$T/err" &&
        ! grep -q "Sanitizer\|runtime error:" "$T/err"; then
        pass "port in use: exit $rc, the cause named ($(basename "$(dirname "$bin")")/$(basename "$bin"))"
    else
        fail "port in use ($bin)" "exit $rc: $(tail -n 5 "$T/err")"
    fi
done
kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null

# status with nothing running: clear error, exit 1
"$ESPROXY" status -s "$T/none.sock" >/dev/null 2>"$T/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot reach" "$T/err" && pass "status without a server" || fail "status without a server" "exit $rc"

# run with a bad config: errors, exit 2, nothing started
printf '[esproxy]\nrole = sideways\n' >"$T/bad.ini"
"$ESPROXY" run -c "$T/bad.ini" 2>"$T/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "^$T/bad.ini:2: role:" "$T/err" && pass "run refuses a bad config" || fail "run refuses a bad config" "exit $rc: $(cat "$T/err")"
finish
