#!/bin/sh
# The Docker artifacts in CI, with rootful podman (no Docker engine here):
#   1. static linters: dockerfile-utils, dclint (npm, cached in $NPM_CACHE),
#      docker-compose config -q
#   2. the local base image debian:bookworm(-slim) from debootstrap
#      (docker/mkbase.sh; tarball cached in $BASE_CACHE, rebuilt when missing)
#   3. podman build of docker/Dockerfile, unchanged: the front-end image
#      (size printed) and the drill node image (--target node)
#   4. docker-compose 1.29 against `podman system service`, which runs inside
#      a test network namespace, so the drill network 10.99.5.0/24, its
#      bridge and netavark's firewall rules exist only there
#   5. a real POP3, IMAP and HTTP session through the containerized frontend
#      (clients in the namespace), status and HEALTHCHECK in the container
#   6. the drill: the drill service loops sessions, the active node is
#      `podman kill`ed, the report (docker/drill.sh) gives the outage
#   7. teardown, also when a step fails: compose down, containers, the
#      podman service (by PID), processes left in the namespace (by PID),
#      mounts under the scratch dir, the namespace, the scratch dir.
# Podman as root needs the four fixes of LAB.md section 6: iptables, low
# default ulimits, runc instead of crun, and private storage/config.
#
# Knobs for developers: ESPROXY_DOCKER_STORAGE=DIR keeps podman's state (image
# store, so the build cache; run root; libpod state) in DIR between runs
# instead of the scratch dir;
# ESPROXY_DOCKER_HOLD=SECONDS keeps the stack up that long before the
# teardown (it prints the environment to reach it).
# ESPROXY_BIN=$PWD/build/asan/esproxy (the ASan+UBSan build): both images
# get that binary and Debian's sanitizer runtime on top (step 3b), and the
# teardown stops the stack with SIGTERM first and checks the front's and
# the nodes' logs for sanitizer reports (tests/lab/lib.sh lab_san_check).
. "$ESPROXY_ROOT/tests/cli/lib.sh"
. "$ESPROXY_ROOT/tests/lab/lib.sh"     # ESPROXY_BIN, lab_san, lab_san_check
. "$ESPROXY_ROOT/tests/lab/podman.sh"
NPM_CACHE=${ESPROXY_NPM_CACHE:-/var/cache/esproxy-npm}
BASE_CACHE=${ESPROXY_BASE_CACHE:-/var/cache/esproxy-docker/base.tar.zst}
T_START=$(now_ms)
step_t=$T_START
# lap: LAP = time since the previous lap, "12.3 s" (call it in this shell, not in $(...))
lap() { t=$(now_ms); LAP="$(( (t - step_t) / 1000 )).$(( (t - step_t) % 1000 / 100 )) s"; step_t=$t; }

if [ "$(id -u)" != 0 ]; then fail "docker: prerequisites" "needs root"; finish; fi
for c in podman docker-compose debootstrap zstd nsenter npm node python3; do
    command -v "$c" >/dev/null 2>&1 || { fail "docker: prerequisites" "$c not found (make deps)"; finish; }
done

LAB=$(mktemp -d /tmp/esproxy-docker.XXXXXX)
NS=esdock$$
# a project name of its own: netavark keeps IP allocations per network name in
# /run/containers/networks (fixed path for rootful podman 4.3), so a run killed
# before its teardown cannot block the static addresses of the next one
PROJECT=drill$$
SVC_PID=
NSREF=/run/netns/$NS
export DOCKER_HOST="unix://$LAB/podman/podman.sock" DRILL_REPORT_DIR="$LAB/report"
export COMPOSE_HTTP_TIMEOUT=60
unset COMPOSE_PROJECT_NAME COMPOSE_FILE
# podman keeps the paths it first ran with in its database: keep them together
STATE=${ESPROXY_DOCKER_STORAGE:-$LAB/podman/state}
mkdir -p "$LAB/report"
podman_setup "$LAB" "$STATE"

# podman in the test namespace (not `ip netns exec`: it remounts /sys and runc fails)
pm() { timeout "${PM_TIMEOUT:-60}" nsenter --net="$NSREF" podman "$@"; }
dc() { (cd "$ROOT/docker" && timeout "${DC_TIMEOUT:-120}" docker-compose -p "$PROJECT" -f compose.yaml "$@"); }

cleanup() {
    trap - EXIT INT TERM
    if [ -n "${ESPROXY_DOCKER_HOLD:-}" ]; then
        echo "docker: holding the stack for $ESPROXY_DOCKER_HOLD s: export CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF" \
            "CONTAINERS_CONF=$CONTAINERS_CONF DOCKER_HOST=$DOCKER_HOST; nsenter --net=$NSREF podman ps"
        sleep "$ESPROXY_DOCKER_HOLD"
    fi
    if lab_san && [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null; then
        # the sanitizers report at exit: SIGTERM (the front deletes its SA,
        # a node stops its backend first), then the logs, before down
        DC_TIMEOUT=60 dc --profile drill stop -t 10 >"$LAB/stop.log" 2>&1
        mkdir -p "$LAB/logs"
        for s in front back1 back2; do
            pm logs "${PROJECT}_${s}_1" >"$LAB/logs/$s.log" 2>&1
            lab_esproxy_log "$LAB/logs/$s.log"
        done
        P=$PROJECT
        lab_san_check || failures=$((failures + 1))
    fi
    if [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null; then
        DC_TIMEOUT=60 dc --profile drill down -t 1 -v --remove-orphans >"$LAB/down.log" 2>&1 ||
            echo "teardown: compose down failed: $(tail -n 3 "$LAB/down.log")"
    fi
    if [ -e "$NSREF" ]; then
        PM_TIMEOUT=60 pm rm -a -f -t 1 >/dev/null 2>&1
        PM_TIMEOUT=30 pm network prune -f >/dev/null 2>&1
    fi
    if [ -n "$SVC_PID" ]; then
        kill "$SVC_PID" 2>/dev/null
        i=0; while kill -0 "$SVC_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$SVC_PID" 2>/dev/null
        wait "$SVC_PID" 2>/dev/null
    fi
    # processes this run left behind: anything in our namespace (aardvark-dns,
    # container processes) and conmon monitors of our storage; their mounts
    podman_reap -n "$NS" "$LAB/podman" "$STATE"
    [ -e "$NSREF" ] && ip netns del "$NS" 2>/dev/null
    rm -rf "$LAB"
    leftover=
    [ -e "$NSREF" ] && leftover="$leftover netns"
    [ -e "$LAB" ] && leftover="$leftover $LAB"
    [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null && leftover="$leftover podman-service"
    if [ -z "$leftover" ]; then
        lap; pass "docker: teardown (containers, networks, podman service, namespace, scratch dir) ($LAP)"
    else
        fail "docker: teardown" "left:$leftover"
    fi
    echo "docker: total $(( ($(now_ms) - T_START) / 1000 )) s"
    finish
}
trap cleanup EXIT
trap 'fail "docker: interrupted" "signal"; exit 1' INT TERM

# ---- 1. linters ----
# dclint 2.2.2: 3.x needs node >= 20.19 and Debian 12 ships node 18
BIN=$NPM_CACHE/node_modules/.bin
if [ ! -x "$BIN/dockerfile-utils" ] || [ ! -x "$BIN/dclint" ] ||
        ! grep -qs '"version": "2.2.2"' "$NPM_CACHE/node_modules/dclint/package.json"; then
    mkdir -p "$NPM_CACHE"
    timeout 300 npm install --prefix "$NPM_CACHE" --no-audit --no-fund --no-save \
        dockerfile-utils@0.16.3 dclint@2.2.2 >"$LAB/npm.log" 2>&1 ||
        { fail "docker: linters installed" "$(tail -n 5 "$LAB/npm.log")"; exit 1; }
fi
lint_ok=1
out=$(cd "$ROOT" && timeout 60 "$BIN/dockerfile-utils" lint docker/Dockerfile 2>&1) || lint_ok=0
[ -n "$out" ] && lint_ok=0
[ $lint_ok = 1 ] && pass "docker: dockerfile-utils lint docker/Dockerfile clean" ||
    fail "docker: dockerfile-utils lint" "$out"
# dclint is opinionated: tests/docker/dclint.json skips the style rules, the
# project-name rule (compose 1.29 rejects a top-level name:) and build+image
# (compose builds and tags the image)
out=$(cd "$ROOT/docker" && timeout 60 "$BIN/dclint" compose.yaml -c "$ROOT/tests/docker/dclint.json" --no-color \
    --max-warnings 0 2>&1)
[ $? = 0 ] && pass "docker: dclint docker/compose.yaml clean" || { fail "docker: dclint" "$out"; lint_ok=0; }
out=$(DC_TIMEOUT=60 dc --profile drill config -q 2>&1)
rc=$?; lap
[ $rc = 0 ] && pass "docker: docker-compose config -q clean ($LAP)" || { fail "docker: docker-compose config" "$out"; lint_ok=0; }
[ $lint_ok = 1 ] || exit 1

# ---- 2. base image ----
if [ ! -s "$BASE_CACHE" ]; then
    mkdir -p "$(dirname "$BASE_CACHE")"
    timeout 600 sh "$ROOT/docker/mkbase.sh" "$BASE_CACHE" >"$LAB/mkbase.log" 2>&1 ||
        { fail "docker: base image (debootstrap)" "$(tail -n 5 "$LAB/mkbase.log")"; exit 1; }
    echo "docker: built $BASE_CACHE with debootstrap"
fi
ip netns add "$NS" || { fail "docker: test namespace" "ip netns add $NS"; exit 1; }
ip -n "$NS" link set lo up
import_base() {
    zstd -dc "$BASE_CACHE" | PM_TIMEOUT=120 pm import --change 'CMD ["bash"]' - localhost/debian:bookworm-slim &&
        pm tag localhost/debian:bookworm-slim docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm
}
# (a kept image store keeps its base image, so that its build cache stays valid)
if [ -z "${ESPROXY_DOCKER_STORAGE:-}" ] || ! podman image exists docker.io/library/debian:bookworm ||
        ! podman image exists docker.io/library/debian:bookworm-slim; then
    import_base >"$LAB/import.log" 2>&1 || { fail "docker: base image import" "$(tail -n 5 "$LAB/import.log")"; exit 1; }
fi
lap; pass "docker: base image debian:bookworm and debian:bookworm-slim from $BASE_CACHE ($LAP)"

# ---- 3. images from the unchanged Dockerfile (build in the host netns:
# RUN apt-get needs the mirror; --network=host creates no bridge; --format
# docker keeps HEALTHCHECK, which the OCI image format has no field for) ----
build() {   # tag [podman build options]
    tag=$1; shift
    (cd "$ROOT" && timeout 600 podman build --pull=never --network=host --ignorefile docker/Dockerfile.dockerignore \
        --format docker -f docker/Dockerfile -t "$tag" "$@" .) >"$LAB/build-$(echo "$tag" | tr '/:' '__').log" 2>&1
}
if build localhost/esproxy:drill; then
    size=$(podman image inspect --format '{{.Size}}' localhost/esproxy:drill); lap
    pass "docker: image localhost/esproxy:drill built, $((size / 1000000)) MB ($size bytes) ($LAP)"
else
    fail "docker: image build" "$(tail -n 15 "$LAB"/build-localhost_esproxy_drill.log)"; exit 1
fi
if build localhost/esproxy-node:drill --target node; then
    size=$(podman image inspect --format '{{.Size}}' localhost/esproxy-node:drill); lap
    pass "docker: drill node image built (--target node), $((size / 1000000)) MB ($LAP)"
else
    fail "docker: node image build" "$(tail -n 15 "$LAB"/build-localhost_esproxy-node_drill.log)"; exit 1
fi
podman images --format '    {{.Repository}}:{{.Tag}} {{.Size}}' | grep esproxy

# ---- 3b. ESPROXY_BIN is the ASan+UBSan build: both images carry it. The
# binary is the host's (Debian 12, as the images), so the image needs only
# the sanitizer runtime; the options come with it in the environment ----
if lab_san; then
    mkdir -p "$LAB/asan"
    cp "$ESPROXY_BIN" "$LAB/asan/esproxy"
    for img in localhost/esproxy:drill localhost/esproxy-node:drill; do
        user=$(podman image inspect --format '{{.Config.User}}' "$img")
        cat >"$LAB/asan/Containerfile" <<EOF
FROM $img
USER root
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libasan8 libubsan1 \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
COPY esproxy /usr/local/bin/esproxy
ENV ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS
${user:+USER $user}
EOF
        (cd "$LAB/asan" && timeout 600 podman build --pull=never --network=host --format docker -t "$img" .) \
            >"$LAB/build-asan.log" 2>&1 || { fail "docker: $img with $ESPROXY_BIN" "$(tail -n 10 "$LAB/build-asan.log")"; exit 1; }
    done
    lap; pass "docker: both images carry $ESPROXY_BIN (ASan+UBSan), libasan8 and libubsan1 ($LAP)"
fi

# ---- 4. compose against the podman API service in the namespace ----
nsenter --net="$NSREF" podman system service --time=0 "$DOCKER_HOST" >"$LAB/service.log" 2>&1 &
SVC_PID=$!
i=0; while [ ! -S "$LAB/podman/podman.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# all four services in one `up` (a second `up` against podman fails: "Network
# ... needs to be recreated"); the drill client starts its load as soon as the
# front-end serves, and the node is killed a few seconds into it
DC_TIMEOUT=90 dc --profile drill up -d --no-build >"$LAB/up.log" 2>&1 ||
    { fail "docker: compose up" "$(tail -n 10 "$LAB/up.log")"; exit 1; }
vip_holder() {
    for n in back1 back2; do
        PM_TIMEOUT=10 pm exec "${PROJECT}_${n}_1" ip -4 -o addr show dev eth0 2>/dev/null | grep -q ' 10.99.5.100/' &&
            { echo "$n"; return; }
    done
    echo none
}
i=0; while [ "$(vip_holder)" = none ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
holder=$(vip_holder)
i=0
while ! pm logs "${PROJECT}_front_1" 2>&1 | grep -q 'event=tunnel name=main event=up' && [ $i -lt 100 ]; do
    sleep 0.2; i=$((i + 1))
done
if pm logs "${PROJECT}_front_1" 2>&1 | grep -q 'event=tunnel name=main event=up'; then
    lap; pass "docker: stack up (front, back1, back2, drill; VIP on $holder; tunnel up) ($LAP)"
else
    fail "docker: stack up" "VIP on $holder, no tunnel after 20 s"
    for n in front back1 back2; do echo "---- $n"; pm logs --tail 40 "${PROJECT}_${n}_1" 2>&1; done
    exit 1
fi
pm ps --format '    {{.Names}} {{.Status}} {{.Image}}'

# ---- the front-end container: non-root, no capabilities, healthcheck ----
uid=$(pm exec "${PROJECT}_front_1" id -u)
caps=$(pm inspect --format '{{.EffectiveCaps}}' "${PROJECT}_front_1")
[ "$uid" = 10110 ] && [ "$caps" = "[]" ] && pass "docker: front runs as uid $uid with no capabilities" ||
    fail "docker: front user/capabilities" "uid=$uid caps=$caps"
pm healthcheck run "${PROJECT}_front_1" >"$LAB/health.log" 2>&1 &&
    pass "docker: HEALTHCHECK (esproxy status -s /run/esproxy/control.sock) healthy" ||
    fail "docker: HEALTHCHECK" "$(cat "$LAB/health.log")"

# ---- 5. real sessions through the containerized frontend, from the namespace ----
timeout 30 ip netns exec "$NS" python3 - 10.99.5.10 >"$LAB/sessions.log" 2>&1 <<'EOF'
import http.client, imaplib, poplib, sys
host = sys.argv[1]
p = poplib.POP3(host, 110, timeout=5)
p.user("alice"); p.pass_("secret123")
n, size = p.stat()
lines = p.retr(1)[1]
p.quit()
print("pop3 ok: %d message(s), RETR %d lines" % (n, len(lines)))
m = imaplib.IMAP4(host, 143, timeout=5)
m.login("alice", "secret123")
typ, data = m.select("INBOX")
typ2, hdr = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
m.logout()
assert typ == "OK" and typ2 == "OK", (typ, typ2)
print("imap ok: SELECT %s exists, %s" % (data[0].decode(), hdr[0][1].decode().strip()))
c = http.client.HTTPConnection(host, 80, timeout=5)
c.request("GET", "/health")
r = c.getresponse()
body = r.read().decode().strip()
assert r.status == 200 and body.startswith("ok"), (r.status, body)
print("http ok: %d %s" % (r.status, body))
EOF
rc=$?
sed 's/^/    /' "$LAB/sessions.log"
for proto in pop3 imap http; do
    grep -q "^$proto ok" "$LAB/sessions.log" && pass "docker: $proto session through the containerized frontend" ||
        fail "docker: $proto session" "rc=$rc $(tail -n 2 "$LAB/sessions.log")"
done
pm exec "${PROJECT}_front_1" esproxy status -s /run/esproxy/control.sock 2>&1 | sed 's/^/    /'
# Prometheus metrics (ESPROXY_METRICS in the compose file), scraped from outside
ip netns exec "$NS" curl -s --max-time 5 http://10.99.5.10:9464/metrics >"$LAB/metrics.txt"
if /usr/bin/python3 "$ROOT/tests/lab/prom_check.py" <"$LAB/metrics.txt" >"$LAB/metrics.samples" &&
    grep -qx 'esproxy_tunnel_up{tunnel="main"} 1' "$LAB/metrics.samples" &&
    grep -qx 'esproxy_sessions_spliced_total{protocol="pop3"} [1-9][0-9]*' "$LAB/metrics.samples"; then
    pass "docker: Prometheus metrics from the container (tunnel up, POP3 login counted)"
else
    fail "docker: metrics" "$(head -c 300 "$LAB/metrics.samples")"
fi
lap; echo "    ($LAP)"

# ---- 6. drill: load from the drill service, `podman kill` the active node ----
i=0; while [ ! -s "$LAB/report/load-started" ] && [ $i -lt 200 ]; do sleep 0.2; i=$((i + 1)); done
if [ -s "$LAB/report/load-started" ]; then
    ls=$(cat "$LAB/report/load-started")
    while [ $(( $(now_ms) - ls )) -lt 5000 ]; do sleep 0.2; done
    victim=$(vip_holder)
    survivor=back2; [ "$victim" = back2 ] && survivor=back1
    t_cmd=$(now_ms)
    pm kill "${PROJECT}_${victim}_1" >/dev/null 2>&1
    t_ret=$(now_ms)
    # the moment the node died: its exit time as conmon recorded it (the
    # podman command itself takes a few hundred ms around the signal)
    fin=$(pm inspect --format '{{.State.FinishedAt}}' "${PROJECT}_${victim}_1" 2>/dev/null | sed 's/ [A-Z]*$//')
    t0=$(date -d "$fin" +%s%3N 2>/dev/null)
    if [ -z "$t0" ] || [ "$t0" -lt "$t_cmd" ] || [ "$t0" -gt "$t_ret" ]; then t0=$t_cmd; fi
    echo "$t0" >"$LAB/report/action_ms"
    echo "    podman kill ${PROJECT}_${victim}_1: command $t_cmd..$t_ret, node exited at $t0 (VIP holder; $survivor should take over)"
    PM_TIMEOUT=90 pm wait "${PROJECT}_drill_1" >/dev/null 2>&1
    pm logs "${PROJECT}_drill_1" 2>&1 | sed 's/^/    /'
    fig() { sed -n "s/^$1=//p" "$LAB/report/drill-report.txt" 2>/dev/null; }
    r=$(fig recovery_ms); v=$(fig vip_ms)
    if [ -n "$r" ] && [ "$r" -ge 0 ] && [ "$r" -le 5000 ]; then
        pass "docker: drill: podman kill $victim -> first successful new session ${r} ms (VIP on $survivor +$((v - t0)) ms; target <= 5000)"
    else
        fail "docker: drill outage" "recovery_ms='$r' (target 0..5000)"
    fi
    [ "$(fig inflight_late)" = 0 ] && pass "docker: drill: no in-flight session hung ($(fig inflight) in flight, $(fig inflight_failed) failed fast)" ||
        fail "docker: drill: hanging sessions" "$(fig inflight_late) hung (see tests/lab/drill_analyze.py)"
    [ "$(fig new_failed)" = 0 ] && pass "docker: drill: all $(fig new_total) sessions opened after the kill succeeded (held while re-keying)" ||
        fail "docker: drill: new sessions failed" "$(fig new_failed) of $(fig new_total): $(fig errors)"
    echo "    drill: $(fig sessions) sessions in all; errors $(fig errors)"
    lap; echo "    ($LAP)"
else
    fail "docker: drill" "load never started: $(pm logs --tail 5 "${PROJECT}_drill_1" 2>&1)"
fi
exit 0
