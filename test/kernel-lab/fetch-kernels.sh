#!/usr/bin/env bash
# Fetches Debian kernels for the lab and caches them unpacked, with modules.dep.
#   fetch-kernels.sh [--refresh] SERIES...     SERIES: 6.1 6.12 7.2 6.12-arm64 (default: 6.1 6.12 7.2)
# Prints one line per series: "SERIES KERNEL-DIR". 6.12-arm64 is trixie's arm64 kernel; its
# entry also holds busybox (bookworm's busybox-static:arm64) for the guest.
# A series already in the cache is used as is (no network) unless --refresh asks
# for the newest version the mirror has. The system's apt configuration is only read.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

refresh=0
series=()
for a in "$@"; do
  case $a in
    --refresh) refresh=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) klab_check_series "$a"; series+=("$a") ;;
  esac
done
((${#series[@]})) || series=("${klab_series_all[@]}")

# amd64 and arm64 package lists live in separate private apt states.
apt_dir=$klab_cache/apt
apt_arch=amd64
mkdir -p "$klab_cache"

# The Debian mirror the system already uses: the URI serving its own release.
mirror_uri() {
  if [[ -n ${KCAPI_AIO_DEBIAN_MIRROR:-} ]]; then echo "$KCAPI_AIO_DEBIAN_MIRROR"; return; fi
  local codename f
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n $codename ]] || klab_die "no VERSION_CODENAME in /etc/os-release; set KCAPI_AIO_DEBIAN_MIRROR"
  local files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]})) || klab_die "no apt sources found; set KCAPI_AIO_DEBIAN_MIRROR"
  # One-line format: deb [opts] URI SUITE COMPONENTS...; deb822: URIs:/Suites: per stanza.
  awk -v want="$codename" '
    function flush() { if (uris != "" && (" " suites " ") ~ (" " want " ")) { split(uris, u, " "); print u[1]; found = 1; exit } uris = ""; suites = "" }
    FNR == 1 { flush() }
    /^[[:space:]]*$/ { flush(); next }
    /^[[:space:]]*#/ { next }
    $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == want) { print $i; found = 1; exit } next }
    tolower($1) == "uris:" { $1 = ""; uris = $0 }
    tolower($1) == "suites:" { $1 = ""; suites = $0 }
    END { if (!found) flush() }
  ' "${files[@]}" | head -n1 | sed 's/^ *//'
}

apt_opts() {
  printf '%s\n' \
    -o "Dir::Etc::sourcelist=$apt_dir/sources.list" \
    -o "Dir::Etc::sourceparts=/dev/null" \
    -o "Dir::State::Lists=$apt_dir/lists" \
    -o "Dir::Cache=$apt_dir/cache" \
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" \
    -o "Dir::Etc::preferences=/dev/null" \
    -o "Dir::Etc::preferencesparts=$apt_dir/empty" \
    -o "APT::Sandbox::User=$(id -un)" \
    -o "Acquire::Languages=none" \
    -o "APT::Architecture=$apt_arch" -o "APT::Architectures=$apt_arch" \
    -o "Debug::NoLocking=1"
}

updated=''
apt_update() {
  [[ $updated == "$apt_arch" ]] && return 0
  # Another run (parallel ctest) may have just read the lists: an hour is fresh enough.
  if [[ -n $(find "$apt_dir/updated" -mmin -60 2>/dev/null) ]]; then updated=$apt_arch; return 0; fi
  local uri s
  uri=$(mirror_uri)
  [[ -n $uri ]] || klab_die "could not find the system's Debian mirror in /etc/apt; set KCAPI_AIO_DEBIAN_MIRROR"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/empty"
  {
    for s in bookworm trixie sid; do
      echo "deb [arch=$apt_arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $s main"
    done
  } >"$apt_dir/sources.list"
  klab_log "reading bookworm/trixie/sid package lists from $uri (private apt state in $apt_dir)"
  local -a opts
  mapfile -t opts < <(apt_opts)
  apt-get "${opts[@]}" -qq update >&2 || klab_die "apt-get update of the private lists failed (network?)"
  touch "$apt_dir/updated"
  updated=$apt_arch
}

# Newest package name matching an extended regex, by version sort.
newest_pkg() {
  local -a opts
  mapfile -t opts < <(apt_opts)
  apt-cache "${opts[@]}" pkgnames "$2" 2>/dev/null | grep -E "^$1\$" | sort -V | tail -n1
}

# Newest cached kernel dir of a series (complete ones only).
cached() {
  local d
  d=$(find "$klab_cache/$1" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null | sort -V | tail -n1)
  [[ -n $d ]] && echo "$d"
}

fetch_series() {
  local s=$1 dir
  if ((!refresh)) && dir=$(cached "$s"); then echo "$s $dir"; return; fi
  apt_arch=$(klab_arch "$s")
  apt_dir=$klab_cache/apt
  [[ $apt_arch == amd64 ]] || apt_dir=$klab_cache/apt-$apt_arch
  apt_update
  local re prefix pkgs=()
  case $s in
    6.1)  re='linux-image-6\.1\.0-[0-9]+-amd64'; prefix=linux-image-6.1.0- ;;
    6.12) re='linux-image-6\.12\.[0-9]+\+deb13-amd64'; prefix=linux-image-6.12. ;;
    7.2)  re='linux-binary-7\.2\.[0-9]+\+deb14-amd64'; prefix=linux-binary-7.2. ;;
    6.12-arm64) re='linux-image-6\.12\.[0-9]+\+deb13-arm64'; prefix=linux-image-6.12. ;;
  esac
  local main
  main=$(newest_pkg "$re" "$prefix")
  [[ -n $main ]] || klab_die "no package matching $re in the mirror's lists"
  pkgs=("$main")
  # 7.2 splits the kernel into image, modules and base (config, modules.builtin).
  [[ $s == 7.2 ]] && pkgs+=("linux-modules-${main#linux-binary-}" "linux-base-${main#linux-binary-}")
  local kdir=$klab_cache/$s/${main}
  if [[ -f $kdir/.complete ]]; then echo "$s $kdir"; return; fi
  local tmp
  tmp=$(mktemp -d "$klab_cache/.fetch.XXXXXX")
  klab_log "downloading ${pkgs[*]}"
  local -a opts
  mapfile -t opts < <(apt_opts)
  (cd "$tmp" && apt-get "${opts[@]}" -qq download "${pkgs[@]}" >&2) ||
    { rm -rf "$tmp"; klab_die "apt-get download ${pkgs[*]} failed"; }
  mkdir -p "$tmp/root"
  if [[ $apt_arch == arm64 ]]; then
    # The guest's shell: bookworm's static busybox for arm64, unpacked beside the kernel.
    (cd "$tmp" && apt-get "${opts[@]}" -qq download "busybox-static/bookworm" >&2) ||
      { rm -rf "$tmp"; klab_die "apt-get download busybox-static:arm64 failed"; }
    mkdir -p "$tmp/bb"
    bb_deb=$(ls "$tmp"/busybox-static_*.deb)
    dpkg-deb -x "$bb_deb" "$tmp/bb"
    bb_version=$(dpkg-deb -f "$bb_deb" Version)
    rm -f "$bb_deb"
  fi
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  # Normalise to ROOT/lib/modules/KVER + ROOT/vmlinuz: depmod -b only looks in lib/modules,
  # and newer packages put modules (and 7.2 even vmlinuz) under usr/lib/modules.
  local out=$tmp/kernel kver
  mkdir -p "$out/lib/modules"
  for m in "$tmp"/root/lib/modules/* "$tmp"/root/usr/lib/modules/*; do
    [[ -d $m ]] && cp -a "$m" "$out/lib/modules/"
  done
  kver=$(basename "$(find "$out/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
  [[ -n $kver ]] || klab_die "no modules directory in ${pkgs[*]}"
  local vmlinuz
  vmlinuz=$(find "$tmp/root" -type f \( -name "vmlinuz-$kver" -o -name vmlinuz \) | head -n1)
  [[ -n $vmlinuz ]] || klab_die "no vmlinuz in ${pkgs[*]}"
  cp "$vmlinuz" "$out/vmlinuz"
  rm -f "$out/lib/modules/$kver/vmlinuz"
  local config
  config=$(find "$tmp/root" -type f \( -name "config-$kver" -o -path "*/modules/$kver/config" \) | head -n1)
  [[ -n $config ]] && cp "$config" "$out/config"
  depmod -b "$out" "$kver" || klab_die "depmod failed for $kver"
  if [[ $apt_arch == arm64 ]]; then
    cp "$tmp/bb/bin/busybox" "$out/busybox"
    pkgs+=("busybox-static:arm64=$bb_version")
  fi
  printf '%s\n' "${pkgs[@]}" >"$out/packages"
  echo "$kver" >"$out/kver"
  touch "$out/.complete"
  mkdir -p "$klab_cache/$s"
  rm -rf "$kdir"
  mv "$out" "$kdir"
  rm -rf "$tmp"
  # Older versions of the series are not used again.
  find "$klab_cache/$s" -mindepth 1 -maxdepth 1 -type d ! -path "$kdir" -exec rm -rf {} +
  klab_log "cached $s: $kver in $kdir"
  echo "$s $kdir"
}

klab_need apt-get:apt dpkg-deb:dpkg depmod:kmod flock:util-linux
# Parallel ctest runs share the cache: one fetcher at a time.
exec 9>"$klab_cache/.lock"
flock 9
for s in "${series[@]}"; do fetch_series "$s"; done
