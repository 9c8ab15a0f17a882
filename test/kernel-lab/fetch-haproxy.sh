#!/usr/bin/env bash
# Unpacks Debian's haproxy (the host's release, bookworm: 2.6, built against OpenSSL 3.0)
# and the libraries it needs that the host may lack into the lab's cache, without
# installing it: installing the package would start a daemon. Prints the root it
# unpacked into (ROOT/usr/sbin/haproxy, libraries in ROOT/usr/lib/x86_64-linux-gnu).
#   fetch-haproxy.sh [--refresh]
# The guest runs it with LD_LIBRARY_PATH=ROOT/usr/lib/x86_64-linux-gnu; the other
# libraries (libssl3, libpcre2, ...) are the host's, found by mkinitramfs.sh.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

dir=${KCAPI_AIO_CACHE:-$HOME/.cache/kcapi-aio}/haproxy
root=$dir/root
[[ ${1:-} == --refresh ]] && rm -rf "$dir"
if [[ -f $dir/.complete && -x $root/usr/sbin/haproxy ]]; then
  echo "$root"
  exit 0
fi
klab_need apt-get:apt dpkg-deb:dpkg
# Only what the host does not have already: haproxy and the libraries of its optional
# features (Lua, OpenTracing) that nothing else pulls in.
pkgs=(haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1)
rm -rf "$dir"
mkdir -p "$dir/debs" "$root"
# A fresh machine may have no package lists yet: read them once and try again.
if ! (cd "$dir/debs" && apt-get download -q "${pkgs[@]}" >&2); then
  klab_log "apt-get download failed; apt-get update, then once more"
  apt-get update -qq >&2 || true
  (cd "$dir/debs" && apt-get download -q "${pkgs[@]}" >&2) ||
    klab_die "apt-get download ${pkgs[*]} failed (mirror unreachable?)"
fi
for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$root"; done
# Documentation, configuration, unit files and halog are of no use in the guest.
(cd "$root" && rm -rf usr/share lib/systemd etc usr/bin usr/sbin/halog)
[[ -x $root/usr/sbin/haproxy ]] || klab_die "no usr/sbin/haproxy in the haproxy package"
(cd "$dir/debs" && ls) >"$dir/packages"
rm -rf "$dir/debs"
touch "$dir/.complete"
echo "$root"
