#!/bin/sh
# RFC 2971 ID before login through a running frontend with python imaplib:
# the largest ID the RFC allows (30 pairs, 30-octet fields, 1024-octet
# values; imaptest sends one of 31,807 bytes) is answered although it is far
# over max_line (8192 by default), and the session goes on; a line of
# another command over max_line still gets "* BAD Line too long".
. "$ESPROXY_ROOT/tests/cli/lib.sh"
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && sleep 0.3 && kill -9 "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

fe_conf "$T/fe.ini" "$T/control.sock" 14745 "[listen imap]" "address = 127.0.0.1:11243" "protocol = imap"
"$ESPROXY" run -c "$T/fe.ini" >/dev/null 2>"$T/log" &
pid=$!
wait_socket "$T/control.sock" || { fail "frontend starts" "$(cat "$T/log")"; finish; }

python3 - <<'PY' >"$T/out" 2>&1
import imaplib
m = imaplib.IMAP4("127.0.0.1", 11243)
m.timeout = 10
fields = " ".join('"%s" "%s"' % ("f%02d" % i + "x" * 27, "v" * 1024) for i in range(30))
imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")
typ, data = m._simple_command("ID", "(%s)" % fields)
print("size", len("A001 ID (%s)\r\n" % fields), "typ", typ, "untagged", m.untagged_responses.get("ID"))
typ, data = m.noop()
print("noop", typ)
tag = m._new_tag().decode()
m.send(("%s NOOP %s\r\n" % (tag, "x" * 9000)).encode())
print("long", m.readline().decode().strip())
PY
size=$(sed -n 's/^size \([0-9]*\) .*/\1/p' "$T/out")
grep -q "^size [0-9]* typ OK untagged \[b'(\"name\" \"esproxy\")'\]" "$T/out" && grep -q "^noop OK" "$T/out" \
    && pass "imaplib: an RFC 2971 maximal ID of $size bytes before login is answered, NOOP after it too" \
    || fail "maximal ID" "$(cat "$T/out")"
grep -q "^long \* BAD Line too long" "$T/out" && pass "a NOOP line over max_line still gets '* BAD Line too long'" \
    || fail "other commands keep max_line" "$(cat "$T/out")"
finish
