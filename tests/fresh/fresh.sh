#!/bin/sh
# The README's first run on a fresh Debian 12: a clean debian:bookworm
# container (the base image tests/docker builds with docker/mkbase.sh, a
# debootstrap minbase), `apt-get install make` and nothing else, the
# committed tree (`git archive HEAD`) copied in, then as the README says:
#   1. `make demo`, non-interactive (DEMO_EXIT=1: it exits after showing the
#      sessions, the status and the metrics, non-zero when a session failed):
#      make deps installs the packages, the build follows, the demo runs
#   2. `make test-unit`
# The container is privileged (the demo creates network namespaces, veths,
# a bridge and sets sysctls in them) and has a network namespace of its own
# with slirp4netns (user-mode NAT) as its way out to the Debian mirror: no
# bridge, no firewall rules and nothing else on the host's network.
#
# Knobs: ESPROXY_FRESH_REV=REV tests another commit (default HEAD);
# ESPROXY_FRESH_DEPS=SETS is what make deps installs in the container
# (ESPROXY_DEPS, default "build unit demo": the packages `make demo` and
# `make test-unit` need; "all" installs everything, as a user's make demo
# does, which costs several more minutes of apt).
# Podman as root with private storage in the scratch dir (tests/lab/podman.sh).
. "$ESPROXY_ROOT/tests/cli/lib.sh"
. "$ESPROXY_ROOT/tests/lab/podman.sh"
BASE_CACHE=${ESPROXY_BASE_CACHE:-/var/cache/esproxy-docker/base.tar.zst}
REV=${ESPROXY_FRESH_REV:-HEAD}
DEPS=${ESPROXY_FRESH_DEPS:-build unit demo}
[ "$DEPS" = all ] && DEPS=
T_START=$(now_ms)
step_t=$T_START
lap() { t=$(now_ms); LAP="$(( (t - step_t) / 1000 )).$(( (t - step_t) % 1000 / 100 )) s"; step_t=$t; }

if [ "$(id -u)" != 0 ]; then fail "fresh: prerequisites" "needs root"; finish; fi
for c in podman runc slirp4netns zstd git; do
    command -v "$c" >/dev/null 2>&1 || { fail "fresh: prerequisites" "$c not found (make deps)"; finish; }
done
if ! git -C "$ROOT" rev-parse --verify -q "$REV^{commit}" >/dev/null; then
    echo "fresh: $ROOT is not a git checkout with $REV: nothing to archive, skipped"
    exit 0
fi

LAB=$(mktemp -d /tmp/esproxy-fresh.XXXXXX)
CTR=esproxy-fresh$$
podman_setup "$LAB" "$LAB/podman/state"

cleanup() {
    trap - EXIT INT TERM
    timeout 60 podman rm -f -t 1 "$CTR" >/dev/null 2>&1
    # whatever this run left (conmon, slirp4netns, a late podman cleanup), by PID; mounts
    podman_reap "$LAB/podman"
    rm -rf "$LAB"
    if [ -e "$LAB" ]; then fail "fresh: teardown" "$LAB left"; else pass "fresh: teardown (container, storage, scratch dir)"; fi
    echo "fresh: total $(( ($(now_ms) - T_START) / 1000 )) s"
    finish
}
trap cleanup EXIT
trap 'fail "fresh: interrupted" "signal"; exit 1' INT TERM

# ---- the base image (tests/docker builds the same cache) ----
if [ ! -s "$BASE_CACHE" ]; then
    mkdir -p "$(dirname "$BASE_CACHE")"
    timeout 600 sh "$ROOT/docker/mkbase.sh" "$BASE_CACHE" >"$LAB/mkbase.log" 2>&1 ||
        { fail "fresh: base image (debootstrap)" "$(tail -n 5 "$LAB/mkbase.log")"; exit 1; }
    echo "fresh: built $BASE_CACHE with debootstrap"
fi
{ zstd -dc "$BASE_CACHE" | timeout 120 podman import --change 'CMD ["bash"]' - localhost/debian:bookworm &&
    podman tag localhost/debian:bookworm docker.io/library/debian:bookworm; } >"$LAB/import.log" 2>&1 ||
    { fail "fresh: base image import" "$(tail -n 5 "$LAB/import.log")"; exit 1; }
git -C "$ROOT" archive --format=tar -o "$LAB/src.tar" "$REV" ||
    { fail "fresh: git archive $REV" "failed"; exit 1; }
lap; echo "fresh: debian:bookworm from $BASE_CACHE, $REV = $(git -C "$ROOT" rev-parse --short "$REV") archived ($LAP)"

# ---- a clean container, plus make ----
timeout 60 podman run -d --name "$CTR" --hostname fresh --privileged --network=slirp4netns \
    docker.io/library/debian:bookworm sleep infinity >"$LAB/run.log" 2>&1 ||
    { fail "fresh: container start" "$(tail -n 5 "$LAB/run.log")"; exit 1; }
ctr() { podman exec "$CTR" "$@"; }
ctr sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q make' >"$LAB/make.log" 2>&1
rc=$?; lap
if [ $rc = 0 ] && ctr make --version >/dev/null 2>&1; then
    pass "fresh: clean debian:bookworm container, only make installed ($LAP)"
else
    fail "fresh: apt-get install make" "rc=$rc $(tail -n 5 "$LAB/make.log")"; exit 1
fi
# clean: no compiler, none of the packages make deps installs
pre=$(ctr sh -c 'for p in gcc libuv1-dev node-llhttp iproute2 dovecot-core nginx-light curl; do
    dpkg-query -W -f="\${Status}\n" $p 2>/dev/null | grep -q "ok installed" && echo $p; done')
[ -z "$pre" ] && pass "fresh: no compiler or esproxy dependency in the container before make demo" ||
    fail "fresh: container not clean" "already installed: $pre"
podman cp "$LAB/src.tar" "$CTR:/root/esproxy.tar" && ctr sh -c 'mkdir /root/esproxy && tar -x -C /root/esproxy -f /root/esproxy.tar && rm /root/esproxy.tar' ||
    { fail "fresh: copy the tree in" "podman cp / tar failed"; exit 1; }

# ---- 1. make demo ----
timeout 2400 podman exec -w /root/esproxy -e DEMO_EXIT=1 ${DEPS:+-e "ESPROXY_DEPS=$DEPS"} "$CTR" make demo \
    >"$LAB/demo.log" 2>&1
rc=$?; lap
npkg=$(ctr sh -c "dpkg-query -W -f='\${Status}\n' | grep -c 'ok installed'")
# the sessions as the demo showed them: each section's first lines, without
# curl's connection notes, request lines and response headers
awk '/^=== / {n = 0} /^=== |^\$ |^demo: / {print "    " $0; next}
    /^    [*>{}] / || /^    < [A-Za-z-]+: / || /^    < *\r?$/ {next}
    n < 5 && /^    / {print "    " $0; n++}' "$LAB/demo.log"
if [ $rc = 0 ] && grep -q '^    ok be1' "$LAB/demo.log" && grep -q '^    Subject: lab message' "$LAB/demo.log" &&
        grep -q '^    < +OK' "$LAB/demo.log" && grep -q 'esproxy_tunnel_up{tunnel="main"} 1' "$LAB/demo.log" &&
        grep -q '^demo: all three sessions went through the tunnel' "$LAB/demo.log"; then
    pass "fresh: make demo on its first run: deps (${DEPS:-all}; $npkg packages now), build, HTTP, POP3 and IMAP through the tunnel, status, metrics ($LAP)"
else
    fail "fresh: make demo" "exit $rc: $(grep -E '\*\*\*|error:|^demo:|^deps:|^E:' "$LAB/demo.log" | tail -n 8)
last lines: $(tail -n 5 "$LAB/demo.log")"
fi

# ---- 2. make test-unit ----
timeout 1200 podman exec -w /root/esproxy "$CTR" make test-unit >"$LAB/unit.log" 2>&1
rc=$?; lap
sum=$(grep '^unit: ' "$LAB/unit.log" | tail -n 1)
if [ $rc = 0 ] && echo "$sum" | grep -q ' 0 failed$'; then
    pass "fresh: make test-unit ($sum) ($LAP)"
else
    fail "fresh: make test-unit" "exit $rc; $sum; $(grep -E '^\[  FAILED|Error|error:' "$LAB/unit.log" | head -n 10) $(tail -n 10 "$LAB/unit.log")"
fi
exit 0
