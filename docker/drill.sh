#!/bin/bash
# The compose drill's client (service "drill"; there is no `esproxy drill`
# subcommand yet, so this is built on the lab tools sessions.py and
# drill_analyze.py). It loops real POP3, IMAP and HTTP sessions through the
# front-end for DRILL_SECONDS while someone kills the active node, e.g.
#     podman kill drill_back1_1     (or: docker kill drill_back1_1)
# and then writes the report into $REPORT_DIR:
#     sessions.jsonl      one line per session (start, end, protocol, ok, error)
#     drill-report.txt    key=value figures (drill_analyze.py), also printed
#     drill-report.json   the same as JSON
# The moment of the kill is read from $REPORT_DIR/action_ms when the killer
# wrote it there (date +%s%3N); otherwise the VIP takeover in
# $REPORT_DIR/vip.log (written by the nodes' keepalived) stands in for it.
#
# Environment: DRILL_TARGET (10.99.5.10), DRILL_SECONDS (20), DRILL_WORKERS (2 per
# protocol), DEAD_AFTER_MS (300), REPORT_DIR (/report).
set -u
T=${DRILL_TARGET:-10.99.5.10}
S=${DRILL_SECONDS:-20}
W=${DRILL_WORKERS:-2}
DEAD=${DEAD_AFTER_MS:-300}
D=${REPORT_DIR:-/report}
L=/usr/local/lib/esproxy
mkdir -p "$D"
rm -f "$D/sessions.jsonl" "$D/drill-report.txt" "$D/drill-report.json" "$D/load-started"

# wait (bounded) until the front-end serves HTTP through the tunnel
i=0
until python3 - "$T" <<'EOF' >/dev/null 2>&1
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=2)
c.request("GET", "/health")
r = c.getresponse()
sys.exit(0 if r.status == 200 else 1)
EOF
do
    i=$((i + 1))
    [ $i -ge 60 ] && { echo "drill: front-end $T not serving after 30 s" >&2; exit 1; }
    sleep 0.5
done

start=$(date +%s%3N)
echo "$start" >"$D/load-started"
echo "drill: load on $T for $S s ($W workers per protocol) from $start; kill the active node now"
python3 "$L/sessions.py" "$T" "$S" "$D/sessions.jsonl" --workers "$W"

action=$(cat "$D/action_ms" 2>/dev/null)
vip=$(awk -v s="$start" '$1 == "MASTER" && $2 + 0 >= s + 0 {t = $2} END {if (t == "") t = "0"; print t}' \
    "$D/vip.log" 2>/dev/null)
[ -n "$vip" ] || vip=0
if [ -z "$action" ] || [ "$action" -lt "$start" ]; then
    action=$vip
    echo "drill: no action_ms after the load started; measuring from the VIP takeover"
fi
if [ "$action" = 0 ]; then
    echo "drill: no node was killed (no VIP move seen)"
    python3 "$L/drill_analyze.py" "$D/sessions.jsonl" "$start" 0 "$DEAD" | tee "$D/drill-report.txt"
    exit 0
fi
{
    echo "action_ms=$action"
    echo "vip_ms=$vip"
    python3 "$L/drill_analyze.py" "$D/sessions.jsonl" "$action" "$vip" "$DEAD"
} >"$D/drill-report.txt"
python3 "$L/drill_analyze.py" "$D/sessions.jsonl" "$action" "$vip" "$DEAD" --json >"$D/drill-report.json"
cat "$D/drill-report.txt"
r=$(sed -n 's/^recovery_ms=//p' "$D/drill-report.txt")
echo "drill: outage (kill -> first successful new session): ${r} ms; VIP moved +$((vip - action)) ms after the kill"
