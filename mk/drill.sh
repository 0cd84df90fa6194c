#!/bin/sh
# make drill: build the namespace cluster lab (tests/lab/lib.sh: client,
# frontend, two nodes with dovecot, nginx, the backend role, keepalived
# moving the VIP), then run two failover drills with `esproxy drill`
# against the frontend and write their reports to OUTDIR:
#   crash     the active node's link goes down (node death)
#   graceful  SIGTERM to the active node's backend role and keepalived
# and print both summaries. Needs root (namespaces).
#
#   sh mk/drill.sh OUTDIR
# With DRILL_VERIFY=1, a python session looper (tests/lab/sessions.py) runs
# alongside each drill and its log is kept as OUTDIR/LABEL.sessions.jsonl,
# for tests to compare against the report.
set -u
OUT=${1:-build/drill}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ESPROXY=${ESPROXY:-$ROOT/build/esproxy}
# sessions as long as the tunnel makes them, not dovecot's login forks
CONF_DOVECOT_REUSE=${CONF_DOVECOT_REUSE:-yes}
LAB=$(mktemp -d)
P=${DRILL_NS_PREFIX:-dr$$}
. "$ROOT/tests/lab/lib.sh"
trap lab_exit EXIT
trap 'exit 1' INT TERM
chmod 755 "$LAB"

[ "$(id -u)" = 0 ] || { echo "drill: needs root (network namespaces)" >&2; exit 1; }
lab_net || { echo "drill: cannot create the lab namespaces" >&2; exit 1; }
lab_mail 2000
for n in be1 be2; do lab_node_start "$n"; done
lab_keepalived be1 150 MASTER
lab_keepalived be2 100 BACKUP
lab_wait_vip be1 5000 || { echo "drill: keepalived did not bring the VIP up on be1" >&2; exit 1; }
mkdir -p "$LAB/fe"
lab_frontend_conf "$LAB/fe/fe.ini"
sed -i 's/^role = frontend$/role = frontend\nmax_per_client = 5000/' "$LAB/fe/fe.ini"
lab_frontend_start "$LAB/fe/fe.ini" || { echo "drill: frontend did not come up" >&2; tail -n 5 "$LAB/fe/fe.log" >&2; exit 1; }

# run_drill LABEL ACTION
run_drill() {
    vpid=
    if [ "${DRILL_VERIFY:-0}" = 1 ]; then
        rm -f "$OUT/$1.sessions.jsonl"
        lab_client python3 "$ROOT/tests/lab/sessions.py" 10.99.1.1 9 "$OUT/$1.sessions.jsonl" --workers 2 &
        vpid=$!
        # the looper must be running when the drill acts: on a busy machine
        # python takes seconds to start (bounded wait; the test checks)
        i=0
        while [ ! -s "$OUT/$1.sessions.jsonl" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    lab_client "$ESPROXY" drill --quiet --action "$2" --at 2 --tail 2 --max-wait 8 -c 12 --timeout 3000 \
        --mix pop3,imap,http=2 --http GET:/health --report "$OUT" --label "$1" 10.99.1.1 >"$OUT/$1.out" 2>"$OUT/$1.err"
    rc=$?
    [ -n "$vpid" ] && wait "$vpid"
    cp "$LAB/be2/ka/transitions" "$OUT/$1.vrrp" 2>/dev/null
    return $rc
}

status=0
echo "== crash drill: be1's link goes down"
run_drill crash "ip -n $(lab_ns be1) link set eth0 down" || status=1
cat "$OUT/crash.txt" 2>/dev/null || cat "$OUT/crash.err"

ip -n "$(lab_ns be1)" link set eth0 up
lab_wait_vip be1 5000
sleep 1.5

echo "== graceful drill: SIGTERM to be1's backend role and keepalived"
eval "bpid=\$lab_backend_pid_be1 kpid=\$lab_keepalived_pid_be1"
run_drill graceful "kill -TERM $bpid $kpid" || status=1
cat "$OUT/graceful.txt" 2>/dev/null || cat "$OUT/graceful.err"
echo "reports: $OUT/crash.html $OUT/graceful.html"
exit $status
