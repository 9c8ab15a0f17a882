#!/usr/bin/env bash
# TLS benchmark (not a test): openssl s_server with kcapi-aio vs the default
# provider alone, side by side in one run, on loopback.
#
#   usage: bench-tls.sh [OPENSSL_BIN [MODULE_DIR [SOURCE_DIR]]]
#     defaults: the openssl of build/CMakeCache.txt (else PATH), build/modules, the repo
#   environment: BENCH_RUNS (5), BENCH_TIME seconds per s_time run (3),
#                BENCH_MIB per bulk fetch (64)
#
# Only the server differs between the two columns: the clients always run
# with the default provider alone. Runs alternate between the two servers so
# drift hits both. Every run's output is checked: s_time's bytes per
# connection must be the served response, bulk bodies are compared with cmp,
# and the kcapi-aio server's counters must cover the bytes it served.
# Figures are medians, per wall-clock second and per second of the server's
# own CPU time (robust on a shared machine); the ratio is kcapi-aio / default
# (> 1: kcapi-aio faster), the median of the paired runs' ratios with min-max.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tls-common.sh
. "$here/tls-common.sh"

src=$(cd "$here/../.." && pwd)
OPENSSL=${1:-$(sed -n 's/^OPENSSL_BIN:[A-Z]*=//p' "$src/build/CMakeCache.txt" 2>/dev/null || true)}
OPENSSL=${OPENSSL:-$(command -v openssl)}
MODDIR=$(cd "${2:-$src/build/modules}" && pwd)
SRCDIR=${3:-$src}
RUNS=${BENCH_RUNS:-5}
TIME=${BENCH_TIME:-3}
MIB=${BENCH_MIB:-64}

work=$(mktemp -d "${TMPDIR:-/tmp}/kcapi-aio-bench.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench-tls: $*" >&2; exit 1; }

cd "$work"
tls_make_conf kcapi.cnf "$MODDIR" "$SRCDIR" || die "no config"
tls_check_conf "$OPENSSL" kcapi.cnf || die "kcapi-aio does not load"
tls_make_cert "$OPENSSL"
head -c 1024 /dev/urandom >tiny.bin
head -c $((MIB << 20)) /dev/urandom >bulk.bin

declare -A port conf pid
conf[default]=/dev/null
conf[kcapi]=$work/kcapi.cnf

# serve VARIANT TAG [NACCEPT]: an s_server -WWW for that variant; port[VARIANT].
serve() {
    local v=$1 tag=$2 n=${3:-}
    # Emptied here, not by the child's redirection: a stale port must not be read.
    : >"srv-$v-$tag.out"
    KCAPI_AIO_STATS=1 OPENSSL_CONF=${conf[$v]} "$OPENSSL" s_server -accept 127.0.0.1:0 \
        -cert cert.pem -key key.pem -WWW ${n:+-naccept "$n"} </dev/null \
        >"srv-$v-$tag.out" 2>"srv-$v-$tag.err" &
    pids+=($!)
    pid[$v]=$!
    port[$v]=$(tls_wait_port "$!" "srv-$v-$tag.out") || die "s_server ($v) did not start"
}
# unserve VARIANT: stop a server that has no -naccept.
unserve() {
    kill "${pid[$1]}" 2>/dev/null || true
    wait "${pid[$1]}" 2>/dev/null || true
}

now() { date +%s.%N; }
# srv_cpu PID: the server's CPU seconds so far (user + system): what the
# provider changes, untouched by the time the machine's other work takes.
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# The response s_server -WWW sends for tiny.bin (status line, header, body).
serve default probe 1
resp_len=$(printf 'GET /tiny.bin HTTP/1.0\r\n\r\n' |
    OPENSSL_CONF=/dev/null "$OPENSSL" s_client -connect "127.0.0.1:${port[default]}" -quiet 2>/dev/null |
    wc -c)
wait "${pid[default]}" 2>/dev/null || true
((resp_len > 1024)) || die "cannot fetch tiny.bin ($resp_len bytes)"

results=()
# handshakes NAME MODE CLIENT_OPTS...: connections/s from s_time MODE (-new | -reuse).
handshakes() {
    local name=$1 mode=$2 v r t0 t1 c0 c1 out n per
    shift 2
    declare -A vals=([default]="" [kcapi]="") cpu=([default]="" [kcapi]="")
    serve default "hs-${#results[@]}"
    serve kcapi "hs-${#results[@]}"
    for ((r = 0; r < RUNS; r++)); do
        for v in default kcapi; do
            c0=$(srv_cpu "${pid[$v]}")
            t0=$(now)
            out=$(OPENSSL_CONF=/dev/null "$OPENSSL" s_time -connect "127.0.0.1:${port[$v]}" "$mode" \
                -time "$TIME" -www /tiny.bin "$@" 2>&1) || die "s_time ($v, $name) failed: $out"
            t1=$(now)
            c1=$(srv_cpu "${pid[$v]}")
            read -r n per < <(sed -nE 's/^([0-9]+) connections in [0-9]+ real seconds, ([0-9]+) bytes read per connection.*/\1 \2/p' <<<"$out" | tail -n 1)
            [[ -n ${n:-} && $n -gt 0 ]] || die "s_time ($v, $name) made no connection: $out"
            # Every connection must have fetched the whole response.
            ((per == resp_len)) || die "s_time ($v, $name): $per bytes per connection, expected $resp_len"
            vals[$v]+="$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / (b - a)}') "
            cpu[$v]+="$(awk -v n="$n" -v a="$c0" -v b="$c1" 'BEGIN {printf "%.1f", (b > a ? n / (b - a) : 0)}') "
        done
    done
    unserve default
    unserve kcapi
    results+=("$name|handshakes/s|${vals[default]}|${vals[kcapi]}")
    results+=("$name|hs/srv-CPU-s|${cpu[default]}|${cpu[kcapi]}")
}

# bulk NAME CLIENT_OPTS...: MiB/s of one fetch of bulk.bin, RUNS times per server.
bulk() {
    local name=$1 v r t0 t1 c0 c1 size body ops bytes stats
    shift
    declare -A vals=([default]="" [kcapi]="") cpu=([default]="" [kcapi]="")
    size=$(stat -c %s bulk.bin)
    # One connection more than the runs: the server's CPU time is read after
    # each run, and a last small fetch then lets it exit (printing its counters).
    serve default "bulk-${#results[@]}" "$((RUNS + 1))"
    serve kcapi "bulk-${#results[@]}" "$((RUNS + 1))"
    for ((r = 0; r < RUNS; r++)); do
        for v in default kcapi; do
            c0=$(srv_cpu "${pid[$v]}")
            t0=$(now)
            printf 'GET /bulk.bin HTTP/1.0\r\n\r\n' |
                OPENSSL_CONF=/dev/null timeout 120 "$OPENSSL" s_client -connect "127.0.0.1:${port[$v]}" \
                    -quiet "$@" >resp.bin 2>client.err || die "s_client ($v, $name) failed: $(tail -n 3 client.err)"
            t1=$(now)
            # s_server -WWW has finished writing once the client has read everything.
            c1=$(srv_cpu "${pid[$v]}")
            body=$(($(stat -c %s resp.bin) - size))
            if ((body <= 0)) || ! tail -c "$size" resp.bin | cmp -s - bulk.bin; then
                die "bulk ($v, $name): the body differs from bulk.bin"
            fi
            vals[$v]+="$(awk -v m="$MIB" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", m / (b - a)}') "
            cpu[$v]+="$(awk -v m="$MIB" -v a="$c0" -v b="$c1" 'BEGIN {printf "%.1f", (b > a ? m / (b - a) : 0)}') "
        done
    done
    for v in default kcapi; do
        printf 'GET /tiny.bin HTTP/1.0\r\n\r\n' | OPENSSL_CONF=/dev/null timeout 60 "$OPENSSL" s_client \
            -connect "127.0.0.1:${port[$v]}" -quiet "$@" >/dev/null 2>&1 || true
    done
    # Both servers exit after that connection: the kcapi-aio one prints its counters.
    wait "${pid[default]}" "${pid[kcapi]}" 2>/dev/null || true
    stats=srv-kcapi-bulk-${#results[@]}.err
    ops=$(tls_counter "$stats" ops_aio ops_sync ops_software)
    bytes=$(tls_counter "$stats" bytes_kernel bytes_software)
    ((bytes >= size * RUNS)) ||
        die "bulk ($name): kcapi-aio counted $bytes bytes for $((size * RUNS)) served: not its work?"
    echo "  $name: kcapi-aio server counters: ops=$ops bytes=$bytes" \
        "($(grep -oE '(ops_aio|ops_sync|ops_software)=[0-9]+' "$stats" | tr '\n' ' '))" >&2
    results+=("$name|MiB/s|${vals[default]}|${vals[kcapi]}")
    results+=("$name|MiB/srv-CPU-s|${cpu[default]}|${cpu[kcapi]}")
}

echo "bench-tls: $("$OPENSSL" version), $(nproc) CPUs, $RUNS runs, s_time ${TIME}s, bulk ${MIB} MiB" >&2
handshakes "TLS1.3 AES-128-GCM new" -new -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
handshakes "TLS1.3 AES-128-GCM reuse" -reuse -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
handshakes "TLS1.2 AES-128-GCM new" -new -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
bulk "TLS1.3 AES-128-GCM" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
bulk "TLS1.3 AES-256-GCM" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
bulk "TLS1.2 AES-256-CBC-SHA384 EtM" -tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384

# Medians of each side, and the ratio kcapi-aio / default run by run (the two
# servers take turns): its median and its spread (min-max).
printf '\n%-32s %-13s %10s %10s %8s %s\n' "suite" "metric" "default" "kcapi-aio" "ratio" "(min-max)"
for row in "${results[@]}"; do
    IFS='|' read -r name metric dv kv <<<"$row"
    dm=$(tr ' ' '\n' <<<"$dv" | grep . | median)
    km=$(tr ' ' '\n' <<<"$kv" | grep . | median)
    ratios=$(paste <(tr ' ' '\n' <<<"$dv" | grep .) <(tr ' ' '\n' <<<"$kv" | grep .) |
        awk '$1 > 0 { printf "%.4f\n", $2 / $1 }' | sort -g)
    printf '%-32s %-13s %10.1f %10.1f %8.3f (%.3f-%.3f)\n' "$name" "$metric" "$dm" "$km" \
        "$(median <<<"$ratios")" "$(head -n1 <<<"$ratios")" "$(tail -n1 <<<"$ratios")"
done
