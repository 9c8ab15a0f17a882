#!/usr/bin/env bash
# Builds OpenSSL 3.5 or 3.6 from Debian's source package (3.5: trixie, 3.6: sid) into a cache
# outside the build tree.
#
#   scripts/openssl-src.sh 3.5      # build once (several minutes), then reuse; last stdout line = prefix
#   cmake -S . -B build-35 -DKCAPI_AIO_OPENSSL_PREFIX="$(scripts/openssl-src.sh 3.5 | tail -n1)"
#   scripts/openssl-src.sh 3.6      # the same from sid, into openssl-3.6/
#   scripts/openssl-src.sh 3.5 arm64  # cross-compiled for arm64 (aarch64-linux-gnu-gcc), into
#                                     # openssl-3.5-arm64/: libraries and bin/openssl, for the arm64
#                                     # kernel lab; it cannot run here, so it is checked with file(1)
#                                     # and the version strings in its binaries
#
# Cache (override the root with KCAPI_AIO_CACHE, default ~/.cache/kcapi-aio), for SERIES 3.5 or 3.6:
#   openssl-SERIES/      installed prefix (bin/openssl, lib/libcrypto.so.3 with an rpath to itself)
#   openssl-SERIES-src/  the built source tree, kept for test/evp_test and test/recipes/30-test_evp_data
#   openssl-SERIES-apt/  private apt state (sources list, package lists, downloaded source package)
#   openssl-SERIES-arm64/  the arm64 prefix (same source package; its build tree is not kept)
#
# The system's apt configuration is never modified: apt reads a private sources list with deb-src
# lines for the suite, whose mirror hosts are taken from the system's own sources at run time.
# Environment: KCAPI_AIO_OPENSSL35_VERSION=V / KCAPI_AIO_OPENSSL36_VERSION=V force one Debian version
# of that series (e.g. 3.5.7-1~deb13u2, 3.6.3-1); JOBS=N sets make's parallelism (default 2).
set -euo pipefail

series=${1:-3.5}
arch=${2:-native}
case $arch in native|arm64) ;; *) printf 'usage: %s [3.5|3.6] [arm64]\n' "$0" >&2; exit 2 ;; esac
case $series in
  3.5) suites=(trixie trixie-updates) security_suite=trixie-security
       forced=${KCAPI_AIO_OPENSSL35_VERSION:-} ;;
  3.6) suites=(sid) security_suite=""   # sid has no security suite
       forced=${KCAPI_AIO_OPENSSL36_VERSION:-} ;;
  *) printf 'usage: %s [3.5|3.6]\n' "$0" >&2; exit 2 ;;
esac
series_re=${series//./\\.}

cache=${KCAPI_AIO_CACHE:-$HOME/.cache/kcapi-aio}
prefix=$cache/openssl-$series
src=$cache/openssl-$series-src
aptdir=$cache/openssl-$series-apt
stamp=$prefix/.kcapi-aio-built
log=$cache/openssl-$series-build.log
jobs=${JOBS:-2}

if [[ $arch == arm64 ]]; then
  # The apt area (and its lock) is shared with the native build of the series.
  prefix=$cache/openssl-$series-arm64
  src=$cache/openssl-$series-arm64-src
  stamp=$prefix/.kcapi-aio-built
  log=$cache/openssl-$series-arm64-build.log
  suffix=" (arm64)"
fi

say() { printf 'openssl-src %s%s: %s\n' "$series" "${suffix:-}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The prefix is usable when its openssl binary and library both report the series without any
# LD_LIBRARY_PATH (the rpath must point at our own libcrypto, not the system's), and the
# source tree still has evp_test and its AES vector files.
valid() {
  [[ -f $stamp && -x $prefix/bin/openssl ]] || return 1
  [[ -x $src/test/evp_test && -f $src/test/recipes/30-test_evp_data/evpciph_aes_common.txt ]] || return 1
  local v
  v=$(env -u LD_LIBRARY_PATH -u OPENSSL_CONF "$prefix/bin/openssl" version -v 2>/dev/null) || return 1
  # "OpenSSL 3.5.x <date> (Library: OpenSSL 3.5.x <date>)" when both match.
  [[ $v =~ ^OpenSSL\ $series_re\.[0-9]+.*\(Library:\ OpenSSL\ $series_re\.[0-9]+ ]] || return 1
  # Both halves must be the same release.
  local built=${v%% (Library: *} lib=${v#* (Library: }
  [[ $built == "${lib%)}" ]] || return 1
}

# The arm64 prefix cannot run here: file(1) must call both binaries arm64, each must carry the
# same "OpenSSL SERIES.x <date>" text (the library's is what bin/openssl version reports), and
# bin/openssl's runpath must be the prefix's own lib/ (the guest has it at the same path).
valid_arm64() {
  [[ -f $stamp && -f $prefix/bin/openssl && -f $prefix/lib/libcrypto.so.3 && -f $prefix/lib/libssl.so.3 ]] || return 1
  [[ -f $prefix/include/openssl/evp.h && -f $prefix/lib/pkgconfig/libcrypto.pc ]] || return 1
  local f v1 v2
  for f in "$prefix/bin/openssl" "$prefix/lib/libcrypto.so.3" "$prefix/lib/libssl.so.3"; do
    file -L "$f" | grep -q 'ARM aarch64' || return 1
  done
  v1=$(grep -aoE "OpenSSL $series_re\.[0-9]+ [0-9]+ [A-Z][a-z]{2} [0-9]{4}" "$prefix/lib/libcrypto.so.3" | head -n1)
  v2=$(grep -aoE "OpenSSL $series_re\.[0-9]+ [0-9]+ [A-Z][a-z]{2} [0-9]{4}" "$prefix/bin/openssl" | head -n1)
  [[ -n $v1 && $v1 == "$v2" ]] || return 1
  readelf -dW "$prefix/bin/openssl" | grep -qE "R(UN)?PATH.*\[$prefix/lib\]" || return 1
}
if [[ $arch == arm64 ]]; then
  valid() { valid_arm64; }
fi
version_text() {
  if [[ $arch == arm64 ]]; then
    grep -aoE "OpenSSL $series_re\.[0-9]+ [0-9]+ [A-Z][a-z]{2} [0-9]{4}" "$prefix/lib/libcrypto.so.3" | head -n1
  else
    env -u LD_LIBRARY_PATH -u OPENSSL_CONF "$prefix/bin/openssl" version -v
  fi
}

mkdir -p "$cache"
if [[ $arch == arm64 ]]; then
  exec 8>"$cache/openssl-$series-arm64.lock"
  flock 8
  if valid; then
    say "cached: $(version_text)"
    printf '%s\n' "$prefix"
    exit 0
  fi
  for tool in aarch64-linux-gnu-gcc readelf file dpkg-source perl make; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-deps.sh)"
  done
  # The source package is the one the native build of the series downloaded (built first if
  # needed, which is what CI does anyway).
  native=$(bash "$0" "$series" | tail -n 1)
  version=$(sed -n 's/^debian-version=//p' "$native/.kcapi-aio-built")
  upstream=${version%-*} upstream=${upstream#*:}
  exec 9>"$cache/openssl-$series.lock"
  flock 9   # the apt area is the native build's
  dsc=$(find "$aptdir/download/$version" -maxdepth 1 -name 'openssl_*.dsc' -print -quit 2>/dev/null || true)
  [[ -n $dsc ]] || die "no source package for openssl=$version in $aptdir/download"
  rm -rf "$src" "$prefix" "$src.unpack"
  mkdir -p "$src.unpack"
  say "unpacking $(basename "$dsc")"
  dpkg-source --no-check -x "$dsc" "$src.unpack/openssl" >"$log" 2>&1 ||
    { cat "$log" >&2; die "dpkg-source -x failed"; }
  flock -u 9
  mv "$src.unpack/openssl" "$src"
  rm -rf "$src.unpack"

  say "cross-building OpenSSL $upstream (Debian $version) for arm64 with make -j$jobs; log: $log"
  start=$(date +%s)
  (
    cd "$src"
    # Libraries, providers and apps/openssl only: no tests, docs or engines.
    ./Configure linux-aarch64 --cross-compile-prefix=aarch64-linux-gnu- shared no-docs no-tests \
      --prefix="$prefix" --libdir=lib "-Wl,-rpath,$prefix/lib"
    make -j"$jobs" build_libs build_modules apps/openssl
    make install_dev install_modules
    install -d "$prefix/bin"
    install -m 755 apps/openssl "$prefix/bin/openssl"
  ) >>"$log" 2>&1 || { tail -n 40 "$log" >&2; die "build failed; full log in $log"; }
  secs=$(($(date +%s) - start))
  rm -rf "$src"
  printf 'debian-version=%s\nupstream=%s\nbuild-seconds=%s\n' "$version" "$upstream" "$secs" >"$stamp"
  valid || die "built, but $prefix does not check out as an arm64 OpenSSL $series (see valid_arm64)"
  say "built in ${secs}s: $(version_text)"
  printf '%s\n' "$prefix"
  exit 0
fi
exec 9>"$cache/openssl-$series.lock"
flock 9   # one build at a time; a second caller waits, then finds the cache valid

if valid; then
  say "cached: $(version_text)"
  printf '%s\n' "$prefix"
  exit 0
fi

for tool in apt-get apt-cache dpkg-source dpkg perl make cc; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-deps.sh)"
done

# --- Mirror hosts from the system's apt sources (one-line .list and deb822 .sources) -------------
# Prints "URI" lines for deb/deb-src entries; the archive is the URI ending in /debian, the security
# archive the one ending in /debian-security.
system_uris() {
  local f
  shopt -s nullglob
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # deb [opts] URI suite comp...
    sed -E -n 's/^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\3/p' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    sed -E -n 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'
  done
  shopt -u nullglob
}
mapfile -t uris < <(system_uris | sed -E 's#/+$##' | grep -E '^(https?|file)://' | awk '!seen[$0]++')
archive="" security=""
for u in "${uris[@]}"; do
  [[ -z $archive && $u == */debian ]] && archive=$u
  [[ -z $security && $u == */debian-security ]] && security=$u
done
[[ -n $archive ]] || die "no Debian archive (a URI ending in /debian) in the system's apt sources"
say "archive mirror: $archive${security:+, security mirror: $security}"

mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/download"
{
  for s in "${suites[@]}"; do printf 'deb-src %s %s main\n' "$archive" "$s"; done
  [[ -z $security || -z $security_suite ]] || printf 'deb-src %s %s main\n' "$security" "$security_suite"
} >"$aptdir/sources.list"

apt_opts=(
  -o "Dir::Etc::sourcelist=$aptdir/sources.list"
  -o "Dir::Etc::sourceparts=/dev/null"
  -o "Dir::State::Lists=$aptdir/lists"
  -o "Dir::Cache=$aptdir/cache"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Sandbox::User=root"
)

say "reading ${suites[*]} source lists"
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update with the private sources list failed"

# Versions of the openssl source package in this series, newest first.
mapfile -t versions < <(
  apt-cache "${apt_opts[@]}" showsrc openssl 2>/dev/null |
    sed -n 's/^Version: //p' | grep -E "^$series_re\\." | awk '!seen[$0]++'
)
if [[ -n $forced ]]; then
  versions=("$forced")
fi
((${#versions[@]})) || die "no openssl $series.x source package listed for ${suites[*]}"
# Newest first, by dpkg's version comparison.
for ((i = 0; i < ${#versions[@]}; i++)); do
  for ((j = i + 1; j < ${#versions[@]}; j++)); do
    if dpkg --compare-versions "${versions[j]}" gt "${versions[i]}"; then
      t=${versions[i]}; versions[i]=${versions[j]}; versions[j]=$t
    fi
  done
done
say "listed $series versions: ${versions[*]}"

dsc=""
for v in "${versions[@]}"; do
  upstream=${v%-*}
  upstream=${upstream#*:}
  d=$aptdir/download/$v
  mkdir -p "$d"
  say "downloading openssl=$v"
  if (cd "$d" && apt-get "${apt_opts[@]}" -qq source --download-only "openssl=$v" >&2); then
    dsc=$(find "$d" -maxdepth 1 -name 'openssl_*.dsc' -print -quit)
    [[ -n $dsc ]] && { version=$v; break; }
  fi
  say "openssl=$v could not be downloaded, trying the next listed version"
  rm -rf "$d"
done
[[ -n $dsc ]] || die "none of the listed versions could be downloaded: ${versions[*]}"

# --- Unpack (with Debian's patches) and build ----------------------------------------------------
# dpkg-source leaves copies of the tarballs next to the tree it makes: unpack in the apt area.
rm -rf "$src" "$prefix" "$aptdir/unpack"
mkdir -p "$aptdir/unpack"
say "unpacking $(basename "$dsc")"
dpkg-source --no-check -x "$dsc" "$aptdir/unpack/openssl" >"$aptdir/unpack.log" 2>&1 ||
  { cat "$aptdir/unpack.log" >&2; die "dpkg-source -x failed"; }
mv "$aptdir/unpack/openssl" "$src"
rm -rf "$aptdir/unpack"

say "building OpenSSL $upstream (Debian $version) with make -j$jobs; log: $log"
start=$(date +%s)
(
  cd "$src"
  # The rpath makes bin/openssl and the tree's test programs use this libcrypto, not the
  # system's one with the same soname.
  ./Configure shared no-docs --prefix="$prefix" --libdir=lib "-Wl,-rpath,$prefix/lib"
  make -j"$jobs"
  make install_sw
) >"$log" 2>&1 || { tail -n 40 "$log" >&2; die "build failed; full log in $log"; }
secs=$(($(date +%s) - start))

printf 'debian-version=%s\nupstream=%s\nbuild-seconds=%s\n' "$version" "$upstream" "$secs" >"$stamp"
valid || die "built, but $prefix/bin/openssl version does not report $series for both binary and library"
say "built in ${secs}s: $(env -u LD_LIBRARY_PATH "$prefix/bin/openssl" version -v)"
printf '%s\n' "$prefix"
