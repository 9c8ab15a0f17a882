#!/usr/bin/env bash
# Builds OpenSSL 3.5 from Debian trixie's source package into a cache outside the build tree.
#
#   scripts/openssl35.sh            # build once (several minutes), then reuse; last stdout line = prefix
#   cmake -S . -B build-35 -DKCAPI_AIO_OPENSSL_PREFIX="$(scripts/openssl35.sh | tail -n1)"
#
# Cache (override the root with KCAPI_AIO_CACHE, default ~/.cache/kcapi-aio):
#   openssl-3.5/      installed prefix (bin/openssl, lib/libcrypto.so.3 with an rpath to itself)
#   openssl-3.5-src/  the built source tree, kept for test/evp_test and test/recipes/30-test_evp_data
#   openssl-3.5-apt/  private apt state (sources list, package lists, downloaded source package)
#
# The system's apt configuration is never modified: apt reads a private sources list with deb-src
# lines for trixie, whose mirror hosts are taken from the system's own sources at run time.
# Environment: KCAPI_AIO_OPENSSL35_VERSION=V forces one Debian version (e.g. 3.5.7-1~deb13u2);
# JOBS=N sets make's parallelism (default 2).
set -euo pipefail

cache=${KCAPI_AIO_CACHE:-$HOME/.cache/kcapi-aio}
prefix=$cache/openssl-3.5
src=$cache/openssl-3.5-src
aptdir=$cache/openssl-3.5-apt
stamp=$prefix/.kcapi-aio-built
log=$cache/openssl-3.5-build.log
jobs=${JOBS:-2}

say() { printf 'openssl35: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The prefix is usable when its openssl binary and library both report 3.5 without any
# LD_LIBRARY_PATH (the rpath must point at our own libcrypto, not the system's), and the
# source tree still has evp_test and its AES vector files.
valid() {
  [[ -f $stamp && -x $prefix/bin/openssl ]] || return 1
  [[ -x $src/test/evp_test && -f $src/test/recipes/30-test_evp_data/evpciph_aes_common.txt ]] || return 1
  local v
  v=$(env -u LD_LIBRARY_PATH -u OPENSSL_CONF "$prefix/bin/openssl" version -v 2>/dev/null) || return 1
  # "OpenSSL 3.5.x <date> (Library: OpenSSL 3.5.x <date>)" when both match.
  [[ $v =~ ^OpenSSL\ 3\.5\.[0-9]+.*\(Library:\ OpenSSL\ 3\.5\.[0-9]+ ]] || return 1
  # Both halves must be the same release.
  local built=${v%% (Library: *} lib=${v#* (Library: }
  [[ $built == "${lib%)}" ]] || return 1
}

mkdir -p "$cache"
exec 9>"$cache/openssl-3.5.lock"
flock 9   # one build at a time; a second caller waits, then finds the cache valid

if valid; then
  say "cached: $(env -u LD_LIBRARY_PATH "$prefix/bin/openssl" version -v)"
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
  printf 'deb-src %s trixie main\n' "$archive"
  printf 'deb-src %s trixie-updates main\n' "$archive"
  [[ -z $security ]] || printf 'deb-src %s trixie-security main\n' "$security"
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

say "reading trixie source lists"
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update with the private sources list failed"

# Versions of the openssl source package in 3.5.x, newest first.
mapfile -t versions < <(
  apt-cache "${apt_opts[@]}" showsrc openssl 2>/dev/null |
    sed -n 's/^Version: //p' | grep -E '^3\.5\.' | awk '!seen[$0]++'
)
if [[ -n ${KCAPI_AIO_OPENSSL35_VERSION:-} ]]; then
  versions=("$KCAPI_AIO_OPENSSL35_VERSION")
fi
((${#versions[@]})) || die "no openssl 3.5.x source package listed for trixie"
# Newest first, by dpkg's version comparison.
for ((i = 0; i < ${#versions[@]}; i++)); do
  for ((j = i + 1; j < ${#versions[@]}; j++)); do
    if dpkg --compare-versions "${versions[j]}" gt "${versions[i]}"; then
      t=${versions[i]}; versions[i]=${versions[j]}; versions[j]=$t
    fi
  done
done
say "listed 3.5 versions: ${versions[*]}"

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
valid || die "built, but $prefix/bin/openssl version does not report 3.5 for both binary and library"
say "built in ${secs}s: $(env -u LD_LIBRARY_PATH "$prefix/bin/openssl" version -v)"
printf '%s\n' "$prefix"
