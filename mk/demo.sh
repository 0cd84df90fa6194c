#!/bin/sh
# make demo: a working demo cluster on this machine, in network namespaces
# (nothing is configured on the host's own interfaces):
#
#   esproxy-client (10.99.1.2) -- esproxy-fe: esproxy frontend (10.99.1.1 | 10.99.2.10)
#        -- IKEv2 + ESP-in-UDP -- esproxy-be1: esproxy backend role on the VIP 10.99.2.100,
#                                   dovecot (IMAP, POP3) and nginx behind it
#
# It runs one real POP3, IMAP and HTTP session through the tunnel, prints
# them, then keeps running for your own clients until Ctrl-C, and cleans up.
# DEMO_EXIT=1: clean up and exit right after the sessions, status and
# metrics instead (non-interactive; tests/fresh uses it); the exit status is
# then non-zero when a session failed.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$(mktemp -d /tmp/esproxy-demo.XXXXXX)
P=esproxy-
. "$ROOT/tests/lab/lib.sh"

demo_rc=
cleanup() {
    rc=${demo_rc:-$?}
    trap - INT TERM EXIT
    echo
    echo "demo: stopping (processes by PID, then the namespaces)"
    lab_cleanup
    rm -rf "$LAB"
    exit "$rc"
}
trap 'demo_rc=${demo_rc:-0}; cleanup' INT TERM     # Ctrl-C is how the demo ends
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (network namespaces)" >&2
    exit 1
fi
for n in client fe be1 be2 sw; do
    if ip netns list | grep -q "^$P$n\b"; then
        echo "demo: namespace $P$n exists: is another demo running? (ip netns del $P$n)" >&2
        trap - EXIT
        exit 1
    fi
done
chmod 755 "$LAB"
lab_net || exit 1
lab_vip_add be1
lab_mail 1500
lab_node_start be1
mkdir -p "$LAB/fe"
lab_frontend_conf "$LAB/fe/fe.ini"
if ! lab_frontend_start "$LAB/fe/fe.ini"; then
    echo "demo: the tunnel did not come up:" >&2
    tail -n 20 "$LAB/fe/fe.log" "$LAB/be1/backend.log" >&2
    exit 1
fi

failed=
show() {
    echo
    title=$1
    echo "=== $title"
    shift
    echo "\$ $*"
    lab_client "$@" >"$LAB/show.out" 2>&1 || failed="$failed '$title'"
    sed 's/^/    /' "$LAB/show.out" | head -n 40
}
show "HTTP through the tunnel" curl -sS -v http://10.99.1.1/health
show "POP3 through the tunnel (curl: LIST, then RETR 1)" curl -sS -v --user alice:secret123 pop3://10.99.1.1/
show "IMAP through the tunnel (curl: fetch message UID 1)" curl -sS --user alice:secret123 'imap://10.99.1.1/INBOX;UID=1'
echo
echo "=== esproxy status (front-end)"
"$ESPROXY_BIN" status -s "$LAB/fe/control.sock" | sed 's/^/    /'
echo
echo "=== a few of its Prometheus metrics (esproxy status --prometheus; HTTP with [esproxy] metrics)"
"$ESPROXY_BIN" status --prometheus -s "$LAB/fe/control.sock" |
    grep -E '^esproxy_(tunnel_up|esp_packets_total|sessions_accepted_total|sessions_spliced_total)' | sed 's/^/    /'
if [ "${DEMO_EXIT:-0}" = 1 ]; then
    echo
    if [ -n "$failed" ]; then
        echo "demo: failed:$failed"
        demo_rc=1
    else
        echo "demo: all three sessions went through the tunnel (DEMO_EXIT=1: not waiting for your clients)"
        demo_rc=0
    fi
    exit "$demo_rc"
fi
cat <<EOF

The demo keeps running. Try your own clients from the client namespace, e.g.:
    ip netns exec ${P}client curl -v --user alice:secret123 pop3://10.99.1.1/
    ip netns exec ${P}client python3 -c 'import imaplib; m=imaplib.IMAP4("10.99.1.1"); print(m.login("alice","secret123"))'
    ip netns exec ${P}client curl -v http://10.99.1.1/health
    $ESPROXY_BIN status -s $LAB/fe/control.sock
    $ESPROXY_BIN status --prometheus -s $LAB/fe/control.sock
Logs: $LAB/fe/fe.log (frontend), $LAB/be1/backend.log (backend role)
Press Ctrl-C to stop.
EOF
while :; do sleep 1; done
