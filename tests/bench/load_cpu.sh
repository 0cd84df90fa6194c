#!/bin/sh
# The load generator is not the bottleneck: `esproxy load` opens HTTP
# sessions (connect, GET, close) against nginx in the namespace lab at
# rising target rates; at each rate the achieved rate and the generator's
# own CPU time (user + sys from its rusage) are reported as a share of the
# machine (all cores). At the highest rate measured the share must stay
# below a quarter of the machine, with the target rate achieved.
. "$ESPROXY_ROOT/tests/cli/lib.sh"
LAB=$(mktemp -d)
P=lb$$
. "$ROOT/tests/lab/lib.sh"
trap lab_exit EXIT
chmod 755 "$LAB"
lab_net || { fail "lab network" "cannot create namespaces"; finish; }
LAB_NGINX_EXTRA_LISTEN="10.99.2.11:8080" lab_nginx be1
i=0; while ! ip netns exec "$(lab_ns be1)" ss -ltn | grep -q 10.99.2.11:8080 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
cores=$(nproc)
last=
for rate in 250 500 1000 2000; do
    out=$(ip netns exec "$(lab_ns fe)" python3 -c '
import json, os, resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
el = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
d = json.loads(p.stdout)
cpu = ru.ru_utime + ru.ru_stime
print(d["rate"], d["ok"], d["failed"], round(cpu, 3), round(100 * cpu / (el * os.cpu_count()), 1))
' "$ESPROXY" load --json -q --mix http --http GET:/health --port http=8080 -c 64 -r $rate -d 3 10.99.2.11)
    set -- $out
    echo "    target $rate sessions/s: achieved $1/s, ok $2, failed $3, generator CPU $4 s = $5% of $cores cores"
    last="$rate $*"
done
set -- $last
python3 -c "import sys; sys.exit(0 if $2 >= 0.9 * $1 and $4 == 0 else 1)" &&
    pass "highest rate: $2 sessions/s achieved of $1 targeted, no failures" || fail "highest rate" "$last"
python3 -c "import sys; sys.exit(0 if $6 < 25 else 1)" &&
    pass "generator CPU at $2 sessions/s: $6% of the machine (< 25%)" || fail "generator CPU share" "$6% at $2/s"
finish
