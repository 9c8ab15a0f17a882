#!/usr/bin/env bash
# Real TLS server and clients through kcapi-aio, on loopback only.
#
#   usage: tls-sserver.sh OPENSSL_BIN MODULE_DIR SOURCE_DIR
#
# 1. bulk: for each AES suite, `openssl s_server -WWW` (OPENSSL_CONF = the
#    repo's kcapi-aio.cnf, module path pointed at the build) serves a 4 MiB
#    file to `openssl s_client` (also through kcapi-aio) and to curl (its own
#    libssl, no provider: interoperability); bodies compared with cmp.
# 2. load: hundreds of connections from several concurrent client loops, each
#    bounded by its count (every connection has a 60 s hang limit); zero
#    failures allowed; connections/s is reported, not judged.
# Both: KCAPI_AIO_STATS=1 on the server (and the bulk s_client) must show
# that kcapi-aio did the record work.
#
# Environment: KCAPI_AIO_TLS_DEFAULT_ONLY=1 runs everything without kcapi-aio
# (OPENSSL_CONF=/dev/null) to check the script itself; KCAPI_AIO_TLS_LOAD=N
# sets the number of load connections (default 300).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tls-common.sh
. "$here/tls-common.sh"

OPENSSL=${1:?openssl binary}
MODDIR=${2:?module directory}
SRCDIR=${3:?source directory}
LOAD=${KCAPI_AIO_TLS_LOAD:-300}
WORKERS=6
BIG=$((4 * 1024 * 1024))
SMALL=20000
DEFAULT_ONLY=0
[[ ${KCAPI_AIO_TLS_DEFAULT_ONLY:-0} != 0 ]] && DEFAULT_ONLY=1

work=$(mktemp -d "${TMPDIR:-/tmp}/kcapi-aio-tls.XXXXXX")
server_pid=""
worker_pids=()
failures=0

cleanup() {
    local p
    # Only what this script started, by pid.
    for p in "${worker_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
note() { echo "-- $*" >&2; }

cd "$work"

# ---- configuration: the repo's kcapi-aio.cnf with the build's module ----
if ((DEFAULT_ONLY)); then
    conf=/dev/null
    note "default provider only: kcapi-aio not loaded, counters not checked"
else
    conf=$work/kcapi-aio.cnf
    tls_make_conf "$conf" "$MODDIR" "$SRCDIR" || exit 1
    tls_check_conf "$OPENSSL" "$conf" || exit 1
fi

# ---- certificate and files ----
tls_make_cert "$OPENSSL"
head -c "$BIG" /dev/urandom >big.bin
head -c "$SMALL" /dev/urandom >small.bin

# ---- server control ----
# start_server NACCEPT [s_server options...]: sets server_pid and port.
start_server() {
    local n=$1 i
    shift
    : >srv.out
    : >srv.err
    KCAPI_AIO_STATS=1 OPENSSL_CONF=$conf "$OPENSSL" s_server -accept 127.0.0.1:0 \
        -cert cert.pem -key key.pem -WWW -naccept "$n" "$@" </dev/null >srv.out 2>srv.err &
    server_pid=$!
    if ! port=$(tls_wait_port "$server_pid" srv.out); then
        cat srv.out srv.err >&2
        echo "FAIL: s_server did not start" >&2
        exit 1
    fi
}

# stop_server SECONDS: wait for the server to exit by itself (-naccept), so
# its exit handlers print the counters; kill it if it does not.
stop_server() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" || fail "s_server exited with status $?"
            server_pid=""
            return 0
        fi
        sleep 0.1
    done
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    fail "s_server still running after $1 s (connections missing?)"
    return 1
}

# check_stats WHO FILE MIN_OPS MIN_BYTES: the provider's dump shows the work.
check_stats() {
    local who=$1 f=$2 minops=$3 minbytes=$4 ops bytes
    ((DEFAULT_ONLY)) && return 0
    ops=$(tls_counter "$f" ops_aio ops_sync ops_software)
    bytes=$(tls_counter "$f" bytes_kernel bytes_software)
    if ! grep -qE 'ops_(aio|sync|software)' "$f"; then
        fail "$who: no kcapi-aio counters in its stderr (KCAPI_AIO_STATS=1)"
        sed 's/^/   /' "$f" >&2
        return 0
    fi
    note "$who: kcapi-aio ops=$ops bytes=$bytes (need >= $minops ops, >= $minbytes bytes)"
    ((ops >= minops)) || fail "$who: kcapi-aio ran $ops ops, expected at least $minops"
    ((bytes >= minbytes)) || fail "$who: kcapi-aio counted $bytes bytes, expected at least $minbytes"
}

# fetch OUT FILE [s_client options...]: GET /FILE with s_client; body to OUT.
fetch() {
    local out=$1 file=$2
    shift 2
    printf 'GET /%s HTTP/1.0\r\n\r\n' "$file" |
        timeout 60 env OPENSSL_CONF="$conf" ${CLIENT_STATS:+KCAPI_AIO_STATS=1} \
            "$OPENSSL" s_client -connect "127.0.0.1:$port" -quiet -CAfile cert.pem \
            -verify_return_error "$@" >"$out.resp" 2>"$out.err" || return 1
    body_of "$out.resp" "$file" >"$out" || return 1
}

# body_of RESPONSE FILE: s_server -WWW answers "HTTP/1.0 200 ok" + headers.
body_of() {
    local size
    size=$(stat -c %s "$2")
    head -n 1 "$1" | grep -q '^HTTP/1.0 200' || return 1
    tail -c "$size" "$1"
}

# ---- 1. bulk transfers per suite ----
# name | server options | client options | curl options | kcapi-aio does the records?
suites=(
    "TLS1.3 AES-128-GCM|-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256|-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256|--tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256|yes"
    "TLS1.3 AES-256-GCM|-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384|-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384|--tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384|yes"
    "TLS1.2 AES-128-GCM|-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256|-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256|--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-GCM-SHA256|yes"
    "TLS1.2 AES-256-GCM|-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384|-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384|--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES256-GCM-SHA384|yes"
    "TLS1.2 AES-256-CBC-SHA384 EtM|-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384|-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384|--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES256-SHA384|yes"
    "TLS1.2 AES-256-CBC-SHA384 MtE|-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES256-SHA384|-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES256-SHA384|--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES256-SHA384|yes"
    "TLS1.2 AES-128-CBC-SHA EtM|-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA|-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA|--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA|yes"
    # MtE AES-SHA1/SHA256: libssl prefers a stitched AES-CBC-HMAC cipher
    # (default provider, AES-NI CPUs), so kcapi-aio may not see the records.
    "TLS1.2 AES-128-CBC-SHA MtE|-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES128-SHA|-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES128-SHA|--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA|maybe"
)
have_curl=0
command -v curl >/dev/null && have_curl=1
((have_curl)) || note "curl not installed: s_client only"

for s in "${suites[@]}"; do
    IFS='|' read -r name sopts copts curlopts ours <<<"$s"
    clients=$((1 + have_curl))
    # shellcheck disable=SC2086 # option lists are meant to split
    start_server "$clients" $sopts
    ok=1
    # shellcheck disable=SC2086
    if CLIENT_STATS=1 fetch big.s_client big.bin $copts && cmp -s big.s_client big.bin; then
        :
    else
        fail "$name: s_client fetch differs or failed"
        tail -n 5 big.s_client.err >&2 || true
        ok=0
    fi
    if ((have_curl)); then
        # shellcheck disable=SC2086
        if timeout 60 curl -sS --fail --cacert cert.pem --resolve "localhost:$port:127.0.0.1" \
            $curlopts -o big.curl "https://localhost:$port/big.bin" 2>curl.err &&
            cmp -s big.curl big.bin; then
            :
        else
            fail "$name: curl fetch differs or failed: $(cat curl.err)"
            ok=0
        fi
    fi
    stop_server 30 || ok=0
    if [[ $ours == yes ]]; then
        # Each side encrypted or decrypted every byte it served or fetched.
        check_stats "$name server" srv.err "$((BIG * clients / 16384))" "$((BIG * clients))"
        check_stats "$name s_client" big.s_client.err "$((BIG / 16384))" "$BIG"
    elif ((!DEFAULT_ONLY)); then
        note "$name: kcapi-aio server ops=$(tls_counter srv.err ops_aio ops_sync ops_software)" \
            "bytes=$(tls_counter srv.err bytes_kernel bytes_software) (stitched cipher may take the records)"
    fi
    ((ok)) && note "$name: $((BIG >> 20)) MiB x $clients clients ok"
    rm -f big.s_client big.curl
done

# ---- 2. load: concurrent client loops, each bounded by its count ----
per=$(((LOAD + WORKERS - 1) / WORKERS))
total=$((per * WORKERS))
loads=(
    "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
    "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384"
    "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"
    "-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384"
    "-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES256-SHA384"
    "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA"
)
start_server "$total"

# worker INDEX OPTIONS: $per connections, half of them resuming a session.
worker() {
    local w=$1 opts=$2 i ok=0 bad=0 sess=()
    for ((i = 0; i < per; i++)); do
        # shellcheck disable=SC2086
        if fetch "w$w.out" small.bin $opts "${sess[@]}" -sess_out "w$w.sess" &&
            cmp -s "w$w.out" small.bin; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
            tail -n 3 "w$w.out.err" >&2 || true
        fi
        # Every other connection offers the last session back.
        if ((i % 2 == 0)) && [[ -s w$w.sess ]]; then sess=(-sess_in "w$w.sess"); else sess=(); fi
    done
    echo "$ok $bad" >"w$w.result"
}

t0=$SECONDS
for ((w = 0; w < WORKERS; w++)); do
    worker "$w" "${loads[w % ${#loads[@]}]}" &
    worker_pids+=($!)
done
for p in "${worker_pids[@]}"; do wait "$p" || true; done
worker_pids=()
good=0
bad=0
for ((w = 0; w < WORKERS; w++)); do
    read -r o b <"w$w.result" || { o=0; b=$per; }
    good=$((good + o))
    bad=$((bad + b))
done
secs=$((SECONDS - t0))
note "load: $good of $total connections ok, $bad failed, $WORKERS concurrent loops, $secs s" \
    "($(awk -v n="$good" -v d="$secs" 'BEGIN { printf "%.1f", (d > 0 ? n / d : n) }') connections/s)"
((bad == 0 && good == total)) || fail "load: $bad failed, $((total - good - bad)) not made"
if ((good == total)); then
    stop_server 30 && check_stats "load server" srv.err "$total" "$((SMALL * total))"
else
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
fi

if ((failures)); then
    echo "tls-sserver: $failures failure(s)" >&2
    exit 1
fi
echo "tls-sserver: all passed"
