#!/bin/sh
# Build (once) and cache the user-mode-linux root filesystem used by the
# strongSwan interop test. The cache lives outside the git tree and survives
# between runs; it is rebuilt only when missing or when its stamp does not
# match this script's package list. The build goes into a temporary
# directory that is renamed into place only when complete, so an interrupted
# build is never mistaken for a cache.
#
#   tests/interop/build-rootfs.sh [CACHE_DIR]     (default /var/cache/esproxy-uml)
# Prints the rootfs path on stdout.
set -eu
CACHE=${1:-${ESPROXY_UML_CACHE:-/var/cache/esproxy-uml}}
ROOTFS=$CACHE/rootfs
PKGS="strongswan-charon,strongswan-swanctl,libstrongswan-standard-plugins,iproute2,kmod,busybox,procps,dovecot-imapd,dovecot-pop3d,nginx-light,keepalived,curl,netbase"
STAMP="esproxy-uml-rootfs v1 $PKGS"

if [ -f "$ROOTFS/.esproxy-stamp" ] && [ "$(cat "$ROOTFS/.esproxy-stamp")" = "$STAMP" ]; then
    echo "$ROOTFS"; exit 0
fi
MIRROR=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
mkdir -p "$CACHE"
# Leftovers of interrupted builds.
for d in "$CACHE"/rootfs.tmp.*; do [ -e "$d" ] && rm -rf "$d"; done
TMP=$(mktemp -d "$CACHE/rootfs.tmp.XXXXXX")
chmod 755 "$TMP"     # it becomes the nodes' / : mktemp made it 0700
trap 'rm -rf "$TMP"' EXIT INT TERM
echo "build-rootfs: debootstrap minbase bookworm from $MIRROR into $TMP" >&2
t0=$(date +%s)
debootstrap --variant=minbase --include="$PKGS" bookworm "$TMP" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
    tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
# Mount points: kernel modules (hostfs from the host's UML package), per-node config.
mkdir -p "$TMP/usr/lib/modules" "$TMP/lab"
# PID 1 of every node (see tests/interop/uml-init).
install -m 755 "$(dirname "$0")/uml-init" "$TMP/sbin/lab-init"
rm -rf "$TMP/var/cache/apt/archives/"*.deb "$TMP/var/lib/apt/lists/"* 2>/dev/null || true
echo "$STAMP" >"$TMP/.esproxy-stamp"
rm -rf "$ROOTFS"
mv "$TMP" "$ROOTFS"
trap - EXIT INT TERM
echo "build-rootfs: done in $(( $(date +%s) - t0 )) s" >&2
echo "$ROOTFS"
