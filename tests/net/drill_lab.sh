#!/bin/sh
# `esproxy drill` in the namespace cluster lab (mk/drill.sh, what `make
# drill` runs): a crash drill and a graceful drill, each with a python
# session looper (tests/lab/sessions.py) running alongside as an
# independent measurement. Checks: both reports written; the outage window
# ends within 100 ms of the looper's own outage (the same definition on
# its sessions) and contains keepalived's VIP move; headless chromium renders the HTML with
# the timeline and its series; the screenshot is kept under build/drill.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
OUT="$ROOT/build/drill"
mkdir -p "$OUT"
rm -f "$OUT"/crash.* "$OUT"/graceful.* "$OUT/report.png"

DRILL_VERIFY=1 DRILL_NS_PREFIX=dt$$ ESPROXY="$ESPROXY" sh "$ROOT/mk/drill.sh" "$OUT" >"$OUT/drill-test.log" 2>&1
rc=$?
# the script's cleanup ends its log with the sanitizer verdict
# (ESPROXY_BIN=build/asan/esproxy): passed on here as it stands
san='/^\(FAIL sanitizer\|PASS no sanitizer\)/'
[ $rc = 0 ] && pass "make drill's script: crash and graceful drills recovered (exit 0)" ||
    fail "drill script" "exit $rc: $(sed "$san,\$d" "$OUT/drill-test.log" | tail -n 15)"
sed -n "$san,\$p" "$OUT/drill-test.log"

fig() { sed -n "s/^figures: .*[ ]$2=\([-0-9.]*\).*/\1/p; s/^figures: $2=\([-0-9.]*\).*/\1/p" "$OUT/$1.txt" | head -n 1; }

for d in crash graceful; do
    if [ ! -s "$OUT/$d.txt" ] || [ ! -s "$OUT/$d.html" ]; then
        fail "$d report" "missing $OUT/$d.txt or .html"
        continue
    fi
    pass "$d: report written ($d.txt, $d.html)"
    start=$(fig $d outage_start_epoch_ms) end=$(fig $d outage_end_epoch_ms) om=$(fig $d outage_ms)
    act=$(fig $d action_epoch_ms)
    before=$(python3 -c 'import json,sys; print(sum(1 for r in map(json.loads, open(sys.argv[1])) if r["start"] < int(sys.argv[2])))' \
             "$OUT/$d.sessions.jsonl" "$act" 2>/dev/null)
    if [ "${before:-0}" -eq 0 ]; then
        fail "$d: looper" "no looper session started before the action (python started too late?)"
        continue
    fi
    # the looper's own outage: the first gap between its successful session
    # ends after the action at least half the longest (another client,
    # other sessions; the drill also requires that its load kept starting
    # sessions during the gap, which keeps a stall of the load itself
    # around the action out of its window)
    set -- $(python3 -c '
import json, sys
act = int(sys.argv[2])
ends = sorted(r["end"] for r in map(json.loads, open(sys.argv[1])) if r["ok"])
gaps = [(a, b) for a, b in zip(ends, ends[1:]) if b > act]
longest = max((b - a for a, b in gaps), default=0)
print(*next(((a, b) for a, b in gaps if b - a >= longest / 2), (-1, -1)))' "$OUT/$d.sessions.jsonl" "$act")
    ls_=$1 le=$2
    echo "    $d: drill window $start..$end (${om} ms); looper window $ls_..$le ($((le - ls_)) ms); action at $act"
    ds=$((start - ls_)); de=$((end - le))
    # both edges of the drill's window close to the independent looper's:
    # it closes when a session gets through again (a new one, or one caught
    # by the failover and resumed), and opens at the last success before
    # the outage. Each side sees an edge only when one of its sessions
    # ends, so the tolerance is 100 ms or two of the looper's p90 sessions
    # in this run, whichever is larger (a busy machine stretches sessions).
    p90=$(python3 "$ROOT/tests/lab/drill_analyze.py" "$OUT/$d.sessions.jsonl" "$act" 0 300 | sed -n 's/^session_p90_ms=//p')
    tol=$((2 * ${p90:-0})); [ "$tol" -lt 100 ] && tol=100
    if [ "$le" -gt 0 ] && [ "${de#-}" -le "$tol" ] && [ "${ds#-}" -le "$tol" ]; then
        pass "$d: the outage window agrees with the independent looper's within $tol ms (end ${de} ms, opening ${ds} ms; session p90 ${p90} ms)"
    else
        fail "$d: outage vs looper" "end edges differ by ${de} ms, opening edges by ${ds} ms (bound $tol: 100 or 2 x session p90 ${p90})"
    fi
    # and drill_analyze.py on the looper's log, from the drill's window opening
    ind=$(python3 "$ROOT/tests/lab/drill_analyze.py" "$OUT/$d.sessions.jsonl" "$start" 0 300 --json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["recovery_ms"])')
    echo "    $d: drill_analyze.py: first looper success after the window opened: ${ind} ms"
    vip=$(sed -n 's/^MASTER //p' "$OUT/$d.vrrp" 2>/dev/null | tail -n 1)
    if [ -n "$vip" ] && [ "$vip" -ge $((start - 100)) ] && [ "$vip" -le $((end + 100)) ]; then
        pass "$d: keepalived moved the VIP inside the window (+$((vip - act)) ms after the action)"
    else
        fail "$d: VIP move inside the outage window" "vip ${vip:-none}, window $start..$end, action $act"
    fi
done

# ---- headless chromium renders the HTML report ----
if command -v chromium >/dev/null 2>&1 && [ -s "$OUT/crash.html" ]; then
    prof=$(mktemp -d)
    CHR="chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run --user-data-dir=$prof"
    timeout 60 $CHR --dump-dom "file://$OUT/crash.html" >"$OUT/crash.dom" 2>/dev/null
    ok=1
    for id in timeline series-success series-errors series-p99 action-marker outage-window; do
        grep -q "id=\"$id\"" "$OUT/crash.dom" || { ok=0; missing="$missing $id"; }
    done
    [ $ok = 1 ] && grep -q '<path id="series-success"[^>]* d="M' "$OUT/crash.dom" &&
        pass "chromium: the rendered DOM has the SVG timeline with success, error and p99 series, action and outage" ||
        fail "chromium DOM" "missing:${missing:-} ($(head -c 200 "$OUT/crash.dom"))"
    rm -rf "$prof"; prof=$(mktemp -d)
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --user-data-dir="$prof" --screenshot="$OUT/report.png" --window-size=1200,800 \
        "file://$OUT/crash.html" >/dev/null 2>&1
    rm -rf "$prof"
    [ -s "$OUT/report.png" ] && [ "$(head -c 4 "$OUT/report.png" | tail -c 3)" = PNG ] &&
        pass "chromium: screenshot saved as build/drill/report.png ($(wc -c <"$OUT/report.png") bytes)" ||
        fail "chromium screenshot" "no PNG"
else
    fail "chromium" "not installed (make deps) or no report"
fi
finish
