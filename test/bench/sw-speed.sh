#!/usr/bin/env bash
# `openssl speed -evp` (benchmark, not a test): kcapi-aio through kcapi-aio.cnf
# against the default provider alone, paired runs in alternating order; prints
# the ratio kcapi-aio / default (> 1: kcapi-aio faster), median (min-max).
#
#   usage: sw-speed.sh [OPENSSL_BIN [MODULE_DIR]]
#     environment: SPEED_RUNS (5), SPEED_SECONDS per run (1)
#
# `openssl speed` does not check its output: test/bench/sw-bench checks every
# byte. Here the provider's counters must show that kcapi-aio did the work
# (on OpenSSL 3.0, `openssl speed -propquery` does not reach the cipher fetch:
# the config's default_properties does).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=../tls/tls-common.sh
. "$src/test/tls/tls-common.sh"
OPENSSL=${1:-$(sed -n 's/^OPENSSL_BIN:[A-Z]*=//p' "$src/build/CMakeCache.txt" 2>/dev/null || true)}
OPENSSL=${OPENSSL:-$(command -v openssl)}
MODDIR=$(cd "${2:-$src/build/modules}" && pwd)
RUNS=${SPEED_RUNS:-5}
SECS=${SPEED_SECONDS:-1}

work=$(mktemp -d "${TMPDIR:-/tmp}/kcapi-aio-speed.XXXXXX")
trap 'rm -rf "$work"' EXIT
tls_make_conf "$work/kcapi.cnf" "$MODDIR" "$src"
tls_check_conf "$OPENSSL" "$work/kcapi.cnf"

# speed CONF ALG BYTES [-decrypt]: thousands of bytes per second
speed() {
    local conf=$1 alg=$2 n=$3 dec=${4:-} out
    out=$(KCAPI_AIO_STATS=1 OPENSSL_CONF=$conf "$OPENSSL" speed -seconds "$SECS" -evp "$alg" $dec \
        -bytes "$n" 2>"$work/err")
    if [[ $conf != /dev/null ]] && ! grep -qE '^ops_software=[1-9]|^ops_(aio|sync)=[1-9]' "$work/err"; then
        echo "sw-speed: kcapi-aio did not run $alg (no operations counted)" >&2
        exit 1
    fi
    awk -v a="${alg^^}" 'toupper($1) == a { sub(/k$/, "", $2); print $2 }' <<<"$out" | tail -n1
}

printf 'openssl speed -evp, kcapi-aio (kcapi-aio.cnf) / default, median (min-max) of %d paired runs of %ss\n' \
    "$RUNS" "$SECS"
printf '%-22s %20s %20s %20s\n' cipher "64 B" "1024 B" "16384 B"
for job in "aes-128-gcm" "aes-256-gcm" "aes-128-cbc" "aes-128-cbc -decrypt" "aes-256-ctr"; do
    read -r alg dec <<<"$job"
    printf '%-22s' "$alg${dec:+ dec}"
    for n in 64 1024 16384; do
        ratios=()
        for ((r = 0; r < RUNS; r++)); do
            if ((r % 2 == 0)); then
                d=$(speed /dev/null "$alg" "$n" $dec); k=$(speed "$work/kcapi.cnf" "$alg" "$n" $dec)
            else
                k=$(speed "$work/kcapi.cnf" "$alg" "$n" $dec); d=$(speed /dev/null "$alg" "$n" $dec)
            fi
            ratios+=("$(awk -v k="$k" -v d="$d" 'BEGIN { printf "%.4f", k / d }')")
        done
        printf ' %20s' "$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 }
            END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                  printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }')"
    done
    printf '\n'
done
