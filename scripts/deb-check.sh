#!/usr/bin/env bash
# Builds the Debian packages and checks them:
#   amd64 (this machine): built in a tree of its own, which is then deleted; the .deb is installed
#     with dpkg -i; with the packaged configuration `openssl list -providers` shows kcapi-aio
#     active, `openssl enc` through it equals the default provider byte for byte and loads the
#     module from OpenSSL's module directory (LD_DEBUG=files), kcapi-aio-info and the manual pages
#     are in place; `dpkg --purge` then leaves /etc and /usr as they were before (file lists);
#   arm64: cross-built (cmake/aarch64-linux-gnu.cmake), checked with dpkg-deb -I/-c and file(1).
# Needs root (dpkg -i).
# Usage: scripts/deb-check.sh [--no-arm64 | --arm64-tree DIR]
#   --arm64-tree DIR: package an arm64 tree already configured and built with the toolchain file
#   against Debian's own :arm64 OpenSSL (not a KCAPI_AIO_OPENSSL_PREFIX build) instead of
#   building one here. Either way only what the package holds is built (target deb-files).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
arm64=1 arm64_tree=""
case ${1:-} in
  "") ;;
  --no-arm64) arm64=0 ;;
  --arm64-tree) arm64_tree=$(cd "${2:?--arm64-tree needs a directory}" && pwd) ;;
  *) echo "usage: $0 [--no-arm64 | --arm64-tree DIR]" >&2; exit 2 ;;
esac
pkg=kcapi-aio

say() { printf 'deb-check: %s\n' "$*"; }
die() { say "FAIL: $*" >&2; exit 1; }

((EUID == 0)) || { say "SKIP: dpkg -i needs root"; exit 0; }
work=$(mktemp -d /tmp/kcapi-aio-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

# package BUILDDIR [cmake args...]: configure, build, cpack; prints the .deb's path.
package() {
  local dir=$1; shift
  rm -rf "$dir"
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" --target deb-files >/dev/null
  (cd "$dir" && cpack -G DEB >/dev/null)
  ls "$dir"/${pkg}_*.deb
}

# --- amd64: build, then remove the build tree -----------------------------------------------------
say "building the amd64 package"
deb=$(package "$top/build-deb")
cp "$deb" "$work/"
deb=$work/$(basename "$deb")
rm -rf "$top/build-deb"
[[ $(dpkg-deb -f "$deb" Architecture) == amd64 ]] || die "$deb is not amd64"
dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents"

if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed; then
  die "$pkg is already installed: dpkg --purge $pkg first"
fi
cnf=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | head -n1)
[[ $cnf == /etc/* ]] || die "no conffile in the package"
[[ ! -e $cnf ]] || die "$cnf exists before the package is installed"

snapshot() { find /etc /usr -xdev \( -type f -o -type l -o -type d \) -print 2>/dev/null | LC_ALL=C sort; }
snapshot >"$work/before"

say "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge "$pkg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# Every packaged file is where dpkg says.
while read -r f; do [[ -e $f ]] || die "dpkg -L lists $f, which is missing"; done < <(dpkg -L "$pkg")
modulesdir=$(openssl version -m | sed -E 's/^MODULESDIR: "(.*)"$/\1/')
[[ -f $modulesdir/kcapi-aio.so ]] || die "kcapi-aio.so is not in OpenSSL's module directory $modulesdir"
say "installed: $modulesdir/kcapi-aio.so, $cnf, $(dpkg -L "$pkg" | grep -c '^/usr/share/man/.*\.gz$') manual pages, $(dpkg -L "$pkg" | grep '^/usr/bin/' | tr '\n' ' ')"

# Nothing from a build tree: no OPENSSL_MODULES, and the loader names the module's path.
unset OPENSSL_MODULES KCAPI_AIO_BACKEND
export OPENSSL_CONF=$cnf
providers=$(openssl list -providers)
awk '/^  kcapi-aio$/ {p=1; next} /^  [^ ]/ {p=0} p && /status: active/ {ok=1} END {exit !ok}' \
  <<<"$providers" || { printf '%s\n' "$providers" >&2; die "openssl list -providers: kcapi-aio is not active"; }
say "openssl list -providers: kcapi-aio active"

head -c 70001 /dev/urandom >"$work/plain"
key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
iv=f0e0d0c0b0a090807060504030201000
for c in aes-128-cbc aes-192-cbc aes-256-ctr; do
  k=${key:0:$((${c:4:3} / 4))}
  KCAPI_AIO_STATS=1 LD_DEBUG=files openssl enc -"$c" -K "$k" -iv "$iv" -in "$work/plain" \
    -out "$work/$c.kaio" 2>"$work/$c.log"
  grep -q "file=$modulesdir/kcapi-aio.so .*dynamically loaded" "$work/$c.log" ||
    die "openssl enc -$c did not load $modulesdir/kcapi-aio.so"
  ! grep -E 'file=/.*kcapi-aio\.so' "$work/$c.log" | grep -qv "file=$modulesdir/kcapi-aio.so" ||
    die "openssl enc -$c loaded another kcapi-aio.so"
  # The provider did the work: its counters (kernel or software path) are not zero.
  grep -Eq '^ops_(aio|sync|software)=[1-9]' "$work/$c.log" || die "kcapi-aio counted no operation for -$c"
  OPENSSL_CONF=/dev/null openssl enc -"$c" -K "$k" -iv "$iv" -in "$work/plain" -out "$work/$c.dflt"
  cmp "$work/$c.kaio" "$work/$c.dflt" || die "openssl enc -$c: kcapi-aio and default differ"
  openssl enc -d -"$c" -K "$k" -iv "$iv" -in "$work/$c.kaio" -out "$work/$c.back"
  cmp "$work/plain" "$work/$c.back" || die "openssl enc -d -$c does not give the input back"
  say "openssl enc -$c: $(stat -c %s "$work/$c.kaio") bytes, equal to default's; decrypts back"
done
unset OPENSSL_CONF

# The installed tool loads the installed module (it was built in a tree that no longer exists).
LD_DEBUG=files kcapi-aio-info --exercise >"$work/info.out" 2>"$work/info.log" ||
  { cat "$work/info.out" "$work/info.log" >&2; die "kcapi-aio-info --exercise failed"; }
grep -q "file=$modulesdir/kcapi-aio.so .*dynamically loaded" "$work/info.log" ||
  die "kcapi-aio-info did not load $modulesdir/kcapi-aio.so"
say "kcapi-aio-info --exercise: $(grep -c ' ok$' "$work/info.out") ciphers ok"
for page in kcapi-aio.7 kcapi-aio-info.1; do
  man -w "${page%.*}" >/dev/null 2>&1 || [[ -f /usr/share/man/man${page##*.}/$page.gz ]] ||
    die "manual page $page not installed"
done

say "dpkg --purge $pkg"
dpkg --purge "$pkg" >/dev/null
trap 'rm -rf "$work"' EXIT
snapshot >"$work/after"
if ! diff "$work/before" "$work/after" >"$work/diff"; then
  cat "$work/diff" >&2
  die "dpkg --purge left /etc or /usr different from before the install"
fi
! ls /var/lib/dpkg/info/"$pkg".* >/dev/null 2>&1 || die "dpkg still has $pkg's control files"
say "purged: /etc and /usr list the same $(wc -l <"$work/after") entries as before"

# --- arm64: cross-built, inspected ----------------------------------------------------------------
if ((arm64)); then
  if [[ -n $arm64_tree ]]; then
    say "packaging ${arm64_tree#"$top"/}"
    rm -f "$arm64_tree"/${pkg}_*.deb
    (cd "$arm64_tree" && cpack -G DEB >/dev/null)
    deb=$(ls "$arm64_tree"/${pkg}_*.deb)
    cp "$deb" "$work/"
  else
    say "building the arm64 package"
    deb=$(package "$top/build-deb-arm64" -DCMAKE_TOOLCHAIN_FILE="$top/cmake/aarch64-linux-gnu.cmake")
    cp "$deb" "$work/"
    rm -rf "$top/build-deb-arm64"
  fi
  deb=$work/$(basename "$deb")
  [[ $(dpkg-deb -f "$deb" Architecture) == arm64 ]] || die "$deb: Architecture is not arm64"
  dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents-arm64"
  for f in ./usr/lib/aarch64-linux-gnu/ossl-modules/kcapi-aio.so ./usr/bin/kcapi-aio-info ".$cnf" \
           ./usr/share/man/man7/kcapi-aio.7.gz ./usr/share/man/man1/kcapi-aio-info.1.gz; do
    grep -qxF "$f" "$work/contents-arm64" || die "arm64 package lacks $f"
  done
  mkdir "$work/x"
  dpkg-deb -x "$deb" "$work/x"
  for f in usr/lib/aarch64-linux-gnu/ossl-modules/kcapi-aio.so usr/bin/kcapi-aio-info; do
    file -L "$work/x/$f" | grep -q 'ELF 64-bit.*ARM aarch64' || die "arm64 package: $f is not an arm64 ELF"
  done
  say "arm64: $(basename "$deb"), $(grep -c '[^/]$' "$work/contents-arm64") files, arm64 ELF objects"
fi
say "all package checks passed"
