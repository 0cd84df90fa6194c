#!/bin/sh
# Control socket hardening: created 0660 with the umask set around bind (no
# chmod after it: strace shows the order), at most CONTROL_MAX_CONNS
# connections at once, each closed CONTROL_CONN_TIMEOUT_MS after accept when
# it stays silent, commands bounded. Both limits are read from
# proxy/control.h; the silent client's close is timed against the latter.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
pid= fe=
cleanup() {
    for p in $fe $pid; do kill "$p" 2>/dev/null && sleep 0.3 && kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
MAX=$(sed -n 's/^#define CONTROL_MAX_CONNS *\([0-9]*\).*/\1/p' "$ROOT/proxy/control.h")
TMO=$(sed -n 's/^#define CONTROL_CONN_TIMEOUT_MS *\([0-9]*\).*/\1/p' "$ROOT/proxy/control.h")
fe_conf "$T/fe.ini" "$T/control.sock" 14750 "[listen imap]" "address = 127.0.0.1:11743" "protocol = imap"

# LeakSanitizer cannot run under ptrace: the ASan build runs here without it
(umask 000; ASAN_OPTIONS=detect_leaks=0 exec strace -f -o "$T/trace" -e trace=umask,bind,chmod,fchmodat "$ESPROXY" run -c "$T/fe.ini" 2>"$T/log") &
pid=$!
wait_socket "$T/control.sock" || { fail "starts" "$(cat "$T/log")"; finish; }
fe=$(sed -n 's/.*event=started .* pid=\([0-9]*\) .*/\1/p' "$T/log")    # strace is $pid
mode=$(stat -c %a "$T/control.sock")
order=$(grep -E "umask\(|bind\(.*control.sock|chmod" "$T/trace" | sed -E 's/^[0-9]+ +//; s/^(umask\([0-7]+\)).*/\1/; s/^(bind|chmod|fchmodat)\(.*/\1/' | tr '\n' ' ')
[ "$mode" = 660 ] && [ "$order" = "umask(0117) bind umask(000) " ] \
    && pass "socket created $mode under umask 000: $order(no chmod after bind)" \
    || fail "socket mode" "mode $mode, calls: $order"

python3 - "$T/control.sock" "$MAX" "$TMO" >"$T/out" <<'PY'
import socket, sys, time
path, cap, tmo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(path); return s
idle = [conn() for _ in range(cap)]
time.sleep(0.2)
extra = conn(); extra.settimeout(2)
try:
    print("extra", "closed" if extra.recv(100) == b"" else "answered")
except socket.timeout:
    print("extra open")
t0 = time.monotonic()
idle[0].settimeout(3 * tmo / 1000)
try:
    d = idle[0].recv(100)
    print("silent", int((time.monotonic() - t0) * 1000 + 200), "eof" if d == b"" else d)
except socket.timeout:
    print("silent open")
time.sleep(0.3)
s = conn(); s.sendall(b"y" * 300); s.settimeout(3)
print("long", s.recv(100).decode().strip())
s = conn(); s.sendall(b"status\n"); s.settimeout(3)
print("status", s.recv(100).decode().splitlines()[0])
PY
grep -q "^extra closed" "$T/out" && pass "connection $((MAX + 1)) is closed at once while $MAX are open" \
    || fail "connection cap $MAX" "$(cat "$T/out")"
ms=$(sed -n 's/^silent \([0-9]*\) eof/\1/p' "$T/out")
[ -n "$ms" ] && [ "$ms" -ge $((TMO - 100)) ] && [ "$ms" -le $((TMO + 2000)) ] \
    && pass "a silent connection is closed after $ms ms (limit $TMO ms, bounds $((TMO - 100))..$((TMO + 2000)))" \
    || fail "silent connection closed" "$(cat "$T/out")"
grep -q "^long error: command too long" "$T/out" && pass "a command over the bound is refused" || fail "long command" "$(cat "$T/out")"
grep -q "^status esproxy .* role=frontend" "$T/out" && pass "status answers after all that" || fail "status" "$(cat "$T/out")"
kill -TERM "$fe"; wait "$pid"; rc=$?; fe= pid=
[ "$rc" -eq 0 ] && ! grep -q "Sanitizer\|runtime error:" "$T/log" && pass "stops cleanly (exit $rc), no sanitizer report" \
    || fail "clean stop" "exit $rc: $(grep -A3 "Sanitizer\|runtime error:" "$T/log" | head -n 5)"
finish
