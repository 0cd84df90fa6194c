#!/bin/sh
# Fetch lwIP 2.1.3 from Debian's source package into $1 (default build/src).
# Uses a private apt state dir with a deb-src entry for the mirror already
# configured, so the system's apt configuration is left untouched.
set -eu
dest=${1:-build/src}
want=2.1.3
if [ -f "$dest/lwip/src/core/tcp.c" ]; then exit 0; fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
    mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "fetch-lwip: no Debian mirror configured" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$dest"
cat >"$work/src.sources" <<SRC
Types: deb-src
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
O="-o Dir::Etc::SourceList=$work/src.sources -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache"
apt-get $O -q update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
(cd "$work" && apt-get $O -q source lwip >"$work/source.log" 2>&1) || { cat "$work/source.log" >&2; exit 1; }
srcdir=$(find "$work" -maxdepth 1 -type d -name "lwip-$want*" | head -n 1)
[ -n "$srcdir" ] || { echo "fetch-lwip: lwip $want source not found" >&2; exit 1; }
rm -rf "$dest/lwip"
mv "$srcdir" "$dest/lwip"
echo "fetch-lwip: lwIP $want in $dest/lwip"
