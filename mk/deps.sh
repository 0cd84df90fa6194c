#!/bin/sh
# Install what esproxy needs to build and test, from Debian packages only,
# then fetch lwIP's source. Idempotent: installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

# Package sets. tests/cli/deps.sh checks that every program the test and
# mk/ scripts run comes from one of these lists (or from the base system).
# what `make` needs for build/esproxy (the Docker image's build stage)
BUILD_PKGS="build-essential pkg-config dpkg-dev ca-certificates libuv1-dev libmbedtls-dev node-llhttp libinih-dev"
# `make test-unit`
UNIT_PKGS="libcmocka-dev"
# `make demo`: the namespace lab's servers and clients
DEMO_PKGS="iproute2 procps util-linux curl dovecot-imapd dovecot-pop3d nginx-light"
# the fuzzers
FUZZ_PKGS="clang libclang-rt-14-dev"
# everything else the tests run
TEST_PKGS="python3 python3-prometheus-client tshark tcpdump openssl fetchmail isync git strace
 strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
 libstrongswan-extra-plugins haproxy keepalived arping podman buildah netavark aardvark-dns slirp4netns
 fuse-overlayfs uidmap iptables runc docker-compose debootstrap zstd nodejs chromium user-mode-linux"
# The Docker test's linters need npm. Debian ships it apart from nodejs;
# a nodejs from elsewhere (NodeSource) brings its own npm and conflicts with
# Debian's package, so the package is asked for only when no npm is there.
NPM_PKGS="npm"

# ESPROXY_DEPS: which sets, default all; `make deps-build` is "build", the
# fresh-machine test (tests/fresh) installs "build unit demo".
sets=${ESPROXY_DEPS:-all}
[ "$sets" = all ] && sets="build unit demo fuzz test"
want=
for s in $sets; do
    case "$s" in
        build) want="$want $BUILD_PKGS" ;;
        unit) want="$want $UNIT_PKGS" ;;
        demo) want="$want $DEMO_PKGS" ;;
        fuzz) want="$want $FUZZ_PKGS" ;;
        test) want="$want $TEST_PKGS"
              command -v npm >/dev/null 2>&1 || want="$want $NPM_PKGS" ;;
        *) echo "deps: unknown set '$s' in ESPROXY_DEPS (build unit demo fuzz test, or all)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages:$missing (run make deps as root)" >&2
        exit 1
    fi
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the lists when they are absent or older than a day.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
        apt-get update -q
    fi
    # Tests start the services they need themselves: keep the packages'
    # init scripts from starting system-wide daemons while installing.
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
sh mk/fetch-lwip.sh build/src
