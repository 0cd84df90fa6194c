#!/bin/sh
# Install what esproxy needs to build and test, from Debian packages only,
# then fetch lwIP's source. Idempotent: installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

BUILD_PKGS="build-essential pkg-config dpkg-dev ca-certificates libuv1-dev libmbedtls-dev node-llhttp
 libcmocka-dev libinih-dev clang libclang-rt-14-dev"
TEST_PKGS="python3 python3-prometheus-client procps iproute2 tshark tcpdump openssl curl util-linux
 strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
 libstrongswan-extra-plugins dovecot-imapd dovecot-pop3d nginx-light haproxy
 keepalived arping podman buildah netavark aardvark-dns slirp4netns fuse-overlayfs uidmap iptables runc docker-compose debootstrap zstd nodejs chromium user-mode-linux"
# DEPS_ONLY_BUILD=1 (`make deps-build`, the Docker image's build stage): only
# what `make` needs for build/esproxy; no test, unit-test or fuzz packages.
if [ "${DEPS_ONLY_BUILD:-0}" = 1 ]; then
    BUILD_PKGS=$(printf '%s\n' $BUILD_PKGS | grep -Ev '^(libcmocka-dev|clang|libclang-rt-14-dev)$' | tr '\n' ' ')
    TEST_PKGS=
fi

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
# The Docker test's linters need npm. Debian ships it apart from nodejs;
# a nodejs from elsewhere (NodeSource) brings its own npm and conflicts with
# Debian's package, so ask for the package only when no npm is there.
if [ "${DEPS_ONLY_BUILD:-0}" != 1 ]; then
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
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
