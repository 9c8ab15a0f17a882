# Shared helpers for the kernel lab scripts (sourced, not run).
# shellcheck disable=SC2034  # used by the scripts that source this file
# shellcheck shell=bash

klab_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
klab_cache=${KCAPI_AIO_CACHE:-$HOME/.cache/kcapi-aio}/kernels
klab_series_all=(6.1 6.12 7.2)

klab_log() { printf 'klab: %s\n' "$*" >&2; }
klab_die() { printf 'klab: error: %s\n' "$*" >&2; exit 2; }

# Fail early, naming the Debian package, rather than half-way through a boot.
klab_need() {
  local cmd pkg missing=()
  for spec in "$@"; do
    cmd=${spec%%:*} pkg=${spec#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd (package $pkg)")
  done
  if ((${#missing[@]})); then
    klab_die "missing: ${missing[*]}; run scripts/install-deps.sh as root"
  fi
}

klab_check_series() {
  case $1 in 6.1|6.12|7.2|6.12-arm64) ;; *) klab_die "unknown kernel series '$1' (want 6.1, 6.12, 7.2 or 6.12-arm64)";; esac
}

# Debian architecture of a series: 6.12-arm64 boots under qemu-system-aarch64, the rest are amd64.
klab_arch() { case $1 in *-arm64) echo arm64 ;; *) echo amd64 ;; esac; }
