#!/bin/sh
# TLS through kcapi-aio inside the kernel lab (busybox ash, so POSIX sh only).
# A real `openssl s_server` runs with OPENSSL_CONF = the repo's kcapi-aio.cnf on
# 127.0.0.1 inside the guest, so the guest kernel's AF_ALG does the records.
#
#   tls-lab.sh test  OPENSSL CNF   per suite, a bulk transfer checked byte for
#                                  byte; then a bounded load run; the counters
#                                  must show the kernel did the work
#   tls-lab.sh bench OPENSSL CNF   handshakes/s and MiB/s through s_server with
#                                  kcapi-aio vs the default provider alone
#
# OPENSSL is the build's openssl, CNF the repo's kcapi-aio.cnf. Runs in the
# build's module dir (the lab's working directory) unless KCAPI_AIO_MODULE_DIR
# names it. Exit 0 pass, 1 fail, 77 skip.
#
# Environment:
#   TLS_LAB_KERNELS  lab kernel series to run on: "6.12" (default), a list, or
#                    "all"; on the others the script skips (it is slow under TCG)
#   TLS_LAB_EXPECT   kernel (default): records on the kernel path, no software
#                    op, no fallback; any: kcapi-aio counted the bytes on some
#                    path (to try the script on a host without AF_ALG)
#   TLS_LAB_MIB (4), TLS_LAB_LOAD (48 connections), TLS_LAB_WORKERS (4);
#   the load run is bounded by its count, never by time: each connection has
#   a hang limit of 60 s, and the run reports connections/s without judging it
#   BENCH_RUNS (3), BENCH_TIME (4 s per s_time run), BENCH_MIB (8)
# shellcheck shell=sh

mode=${1:-}
OPENSSL=${2:-}
CNF=${3:-}
case $mode in test|bench) ;; *) echo "usage: $0 test|bench OPENSSL CNF" >&2; exit 2 ;; esac

EXPECT=${TLS_LAB_EXPECT:-kernel}
KERNELS=${TLS_LAB_KERNELS:-6.12}
if [ -n "${KLAB_KERNEL:-}" ] && [ "$KERNELS" != all ]; then
    case " $KERNELS " in
        *" $KLAB_KERNEL "*) ;;
        *) echo "SKIP: TLS in the lab runs on kernel(s) $KERNELS only (TLS_LAB_KERNELS), this is $KLAB_KERNEL"
           exit 77 ;;
    esac
fi

MODDIR=${KCAPI_AIO_MODULE_DIR:-$PWD}
# Missing pieces are a broken lab setup, not a reason to skip.
[ -x "$OPENSSL" ] || { echo "FAIL: no openssl at '$OPENSSL' (guest-files.list, @OPENSSL_BIN@)"; exit 1; }
[ -f "$CNF" ] || { echo "FAIL: no config at '$CNF'"; exit 1; }
[ -f "$MODDIR/kcapi-aio.so" ] || { echo "FAIL: no $MODDIR/kcapi-aio.so"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tls-lab.XXXXXX") || exit 1
pids=
failures=0

cleanup() {
    # Only what this script started, by pid.
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    cd / && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
note() { echo "-- $*"; }
die() { echo "FAIL: $*"; exit 1; }
# Seconds since boot, 10 ms resolution: busybox date has no %N.
now() { cut -d' ' -f1 /proc/uptime; }

cd "$work" || exit 1

# ---- configuration: the repo's file; an active module line (if it gets one)
# must point at this build, and OPENSSL_MODULES covers the file's default.
sed "s|^\([[:space:]]*module[[:space:]]*=\).*kcapi-aio\.so.*\$|\1 $MODDIR/kcapi-aio.so|" "$CNF" >kcapi.cnf
export OPENSSL_MODULES="$MODDIR"
conf=$work/kcapi.cnf
if ! out=$(OPENSSL_CONF=$conf "$OPENSSL" list -providers 2>&1) ||
    ! printf '%s\n' "$out" | grep -q kcapi-aio; then
    printf '%s\n' "$out"
    die "$conf does not load kcapi-aio"
fi
note "$("$OPENSSL" version), kernel $(uname -r), $(nproc) CPU(s), expect=$EXPECT"
if [ -x "$MODDIR/kcapi-aio-info" ]; then
    "$MODDIR/kcapi-aio-info" --provider-path "$MODDIR" 2>&1 | grep -E '^(AF_ALG|AIO|[a-z]+\(aes\))' | sed 's/^/   info: /'
fi

# Setup only, not through the provider.
OPENSSL_CONF=/dev/null "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=localhost -days 2 -keyout key.pem -out cert.pem >/dev/null 2>&1 || die "no certificate"

# ---- helpers ----

# start_server TAG NACCEPT CONF [s_server options...]: sets srv_pid and port.
# NACCEPT 0: no -naccept (the caller kills it).
start_server() {
    _tag=$1 _n=$2 _c=$3
    shift 3
    [ "$_n" -gt 0 ] && set -- -naccept "$_n" "$@"
    : >"srv-$_tag.out"
    KCAPI_AIO_STATS=1 OPENSSL_CONF=$_c "$OPENSSL" s_server -accept 127.0.0.1:0 \
        -cert cert.pem -key key.pem -WWW "$@" </dev/null >"srv-$_tag.out" 2>"srv-$_tag.err" &
    srv_pid=$!
    pids="$pids $srv_pid"
    _i=0
    # Port 0: the kernel picks a free port, s_server prints it.
    while [ $_i -lt 600 ]; do
        port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "srv-$_tag.out")
        [ -n "$port" ] && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
        _i=$((_i + 1))
    done
    cat "srv-$_tag.out" "srv-$_tag.err"
    die "s_server ($_tag) did not start"
}

# wait_exit PID SECONDS: wait for a server that stops by itself (-naccept), so
# its exit handler prints the counters; kill it after SECONDS.
wait_exit() {
    _i=0
    while [ $_i -lt $(($2 * 10)) ]; do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1" || { fail "s_server exited with status $?"; return 1; }
            return 0
        fi
        sleep 0.1
        _i=$((_i + 1))
    done
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    fail "s_server still running after $2 s (connections missing?)"
    return 1
}

# fetch OUT FILE CONF PORT SECONDS [s_client options...]: GET /FILE; the
# response in OUT.resp, stderr (counters) in OUT.err; the body checked.
fetch() {
    _out=$1 _file=$2 _c=$3 _port=$4 _t=$5
    shift 5
    printf 'GET /%s HTTP/1.0\r\n\r\n' "$_file" |
        timeout "$_t" env OPENSSL_CONF="$_c" KCAPI_AIO_STATS=1 "$OPENSSL" s_client \
            -connect "127.0.0.1:$_port" -quiet -CAfile cert.pem -verify_return_error "$@" \
            >"$_out.resp" 2>"$_out.err" || return 1
    check_body "$_out.resp" "$_file"
}

# check_body RESPONSE FILE: s_server -WWW's header, then FILE byte for byte.
check_body() {
    _size=$(wc -c <"$2")
    _hdr=$(($(wc -c <"$1") - _size))
    [ "$_hdr" -gt 4 ] || return 1
    head -n 1 "$1" | grep -q '^HTTP/1.0 200' || return 1
    # The header must end right where the body starts.
    [ "$(head -c "$_hdr" "$1" | tail -c 4 | od -An -c | tr -d ' ')" = '\r\n\r\n' ] || return 1
    tail -c "$_size" "$1" | cmp -s - "$2"
}

# counter FILE NAME...: sum of the named counters in a KCAPI_AIO_STATS dump.
counter() {
    _f=$1
    shift
    awk -F= -v names="$*" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 }
        ($1 in w) { s += $2 } END { print s + 0 }' "$_f"
}

# check_stats WHO FILE MIN_OPS MIN_BYTES: the provider's counters show the work.
check_stats() {
    _who=$1 _f=$2 _minops=$3 _minbytes=$4
    if ! grep -q '^ops_sync=' "$_f"; then
        fail "$_who: no kcapi-aio counters (KCAPI_AIO_STATS=1 did not print)"
        sed 's/^/   /' "$_f" | tail -n 20
        return
    fi
    _kops=$(counter "$_f" ops_aio ops_sync)
    _sops=$(counter "$_f" ops_software)
    _kb=$(counter "$_f" bytes_kernel)
    _sb=$(counter "$_f" bytes_software)
    _fb=$(grep '^fallback\[' "$_f" | tr '\n' ' ')
    note "$_who: ops_aio=$(counter "$_f" ops_aio) ops_sync=$(counter "$_f" ops_sync)" \
        "ops_software=$_sops bytes_kernel=$_kb bytes_software=$_sb${_fb:+ $_fb}"
    if [ "$EXPECT" = kernel ]; then
        [ "$_kops" -ge "$_minops" ] || fail "$_who: $_kops kernel ops, expected at least $_minops"
        [ "$_kb" -ge "$_minbytes" ] || fail "$_who: $_kb bytes in the kernel, expected at least $_minbytes"
        [ "$_sops" -eq 0 ] || fail "$_who: $_sops ops ran in software"
        [ -z "$_fb" ] || fail "$_who: fallbacks: $_fb"
    else
        [ $((_kops + _sops)) -ge "$_minops" ] || fail "$_who: $((_kops + _sops)) ops, expected at least $_minops"
        [ $((_kb + _sb)) -ge "$_minbytes" ] || fail "$_who: $((_kb + _sb)) bytes, expected at least $_minbytes"
    fi
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# The suites: NAME|OPTIONS (the same on both ends).
SUITES='TLS1.3 AES-128-GCM|-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
TLS1.3 AES-256-GCM|-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
TLS1.2 AES-128-GCM|-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
TLS1.2 AES-256-GCM|-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384
TLS1.2 AES-256-CBC-SHA384 EtM|-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384
TLS1.2 AES-256-CBC-SHA384 MtE|-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES256-SHA384'

# ======================================================================
run_test() {
    mib=${TLS_LAB_MIB:-4}
    big=$((mib * 1024 * 1024))
    small=20000
    head -c "$big" /dev/urandom >big.bin
    head -c "$small" /dev/urandom >small.bin

    # ---- 1. bulk: one s_server and one s_client per suite, both on kcapi-aio ----
    printf '%s\n' "$SUITES" >suites
    while IFS='|' read -r name opts; do
        t0=$(now)
        # shellcheck disable=SC2086 # option lists are meant to split
        start_server bulk 1 "$conf" $opts
        ok=1
        # shellcheck disable=SC2086
        if ! fetch big big.bin "$conf" "$port" 120 $opts; then
            fail "$name: s_client fetch failed or the body differs"
            tail -n 5 big.err
            ok=0
        fi
        wait_exit "$srv_pid" 60 || ok=0
        # Each side put every byte of the file through kcapi-aio: records of
        # at most 16 KiB, one kernel op each (no batching in libssl).
        check_stats "$name server" srv-bulk.err $((big / 16384)) "$big"
        check_stats "$name s_client" big.err $((big / 16384)) "$big"
        t1=$(now)
        [ $ok = 1 ] && note "$name: $mib MiB ok, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
        rm -f big.resp
    done <suites

    # ---- 2. load: concurrent client loops, each bounded by its count ----
    load=${TLS_LAB_LOAD:-48}
    workers=${TLS_LAB_WORKERS:-4}
    per=$(((load + workers - 1) / workers))
    total=$((per * workers))
    start_server load "$total" "$conf"
    load_pid=$srv_pid
    t0=$(now)
    w=0
    wpids=
    printf '%s\n' "$SUITES" >suites
    while IFS='|' read -r name opts; do
        [ $w -lt "$workers" ] || break
        # shellcheck disable=SC2086
        worker "$w" $opts &
        wpids="$wpids $!"
        pids="$pids $!"
        w=$((w + 1))
    done <suites
    # More workers than suites: the rest use the server's default choice.
    while [ $w -lt "$workers" ]; do
        worker "$w" &
        wpids="$wpids $!"
        pids="$pids $!"
        w=$((w + 1))
    done
    for p in $wpids; do wait "$p"; done
    good=0 bad=0 w=0
    while [ $w -lt "$workers" ]; do
        if read -r o b <"w$w.result"; then :; else o=0 b=$per; fi
        good=$((good + o))
        bad=$((bad + b))
        w=$((w + 1))
    done
    # Throughput is reported, not judged: a busy host slows TCG.
    note "load: $good of $total connections ok, $bad failed, $workers concurrent loops," \
        "$(awk -v a="$t0" -v b="$(now)" -v n="$good" 'BEGIN { d = b - a; printf "%.1f s, %.2f connections/s", d, (d > 0 ? n / d : 0) }')"
    if [ $bad -eq 0 ] && [ $good -eq "$total" ]; then
        wait_exit "$load_pid" 60 &&
            check_stats "load server" srv-load.err "$total" $((small * total))
    else
        fail "load: $bad failed, $((total - good - bad)) not made"
        kill "$load_pid" 2>/dev/null
        wait "$load_pid" 2>/dev/null
    fi
}

# worker INDEX [OPTIONS...]: $per connections, each with a 60 s hang limit;
# every other one offers the previous session back (resumption).
worker() {
    _w=$1
    shift
    _i=0 _ok=0 _bad=0 _sess=''
    while [ $_i -lt "$per" ]; do
        # shellcheck disable=SC2086 # _sess is empty or two words
        if fetch "w$_w" small.bin "$conf" "$port" 60 "$@" $_sess -sess_out "w$_w.sess"; then
            _ok=$((_ok + 1))
        else
            _bad=$((_bad + 1))
            echo "worker $_w: connection $_i failed:"
            tail -n 3 "w$_w.err"
        fi
        if [ $((_i % 2)) -eq 0 ] && [ -s "w$_w.sess" ]; then _sess="-sess_in w$_w.sess"; else _sess=; fi
        _i=$((_i + 1))
    done
    echo "$_ok $_bad" >"w$_w.result"
}

# ======================================================================
# Only the server differs between the columns: clients use the default
# provider alone. Runs alternate between the two servers so drift hits both.
run_bench() {
    runs=${BENCH_RUNS:-3}
    btime=${BENCH_TIME:-4}
    bmib=${BENCH_MIB:-8}
    head -c 1024 /dev/urandom >tiny.bin
    head -c $((bmib * 1024 * 1024)) /dev/urandom >bulk.bin
    : >results

    # What s_time must read per connection: the whole response for tiny.bin.
    start_server probe 1 /dev/null
    fetch probe tiny.bin /dev/null "$port" 60 || die "cannot fetch tiny.bin"
    resp_len=$(wc -c <probe.resp)
    wait_exit "$srv_pid" 30
    note "bench: $runs runs, s_time ${btime}s, bulk $bmib MiB, response for tiny.bin $resp_len bytes"

    bench_hs "TLS1.3 AES-128-GCM new" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
    bench_hs "TLS1.2 AES-128-GCM new" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
    bench_bulk "TLS1.3 AES-128-GCM" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
    bench_bulk "TLS1.3 AES-256-GCM" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
    bench_bulk "TLS1.2 AES-128-GCM" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
    bench_bulk "TLS1.2 AES-256-CBC-SHA384 EtM" -tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384

    echo
    echo "BENCH-TABLE kernel $(uname -r), $("$OPENSSL" version | cut -d' ' -f1-2), medians of $runs"
    printf '%-30s %-13s %10s %10s %7s\n' suite metric default kcapi-aio ratio
    while IFS='|' read -r name metric dv kv; do
        # shellcheck disable=SC2086 # one value a word
        dm=$(printf '%s\n' $dv | median)
        # shellcheck disable=SC2086
        km=$(printf '%s\n' $kv | median)
        printf '%-30s %-13s %10.2f %10.2f %7.3f\n' "$name" "$metric" "$dm" "$km" \
            "$(awk -v a="$km" -v b="$dm" 'BEGIN { print (b > 0) ? a / b : 0 }')"
    done <results
    echo "BENCH-END (ratio = kcapi-aio / default; > 1: kcapi-aio faster)"
    echo "raw runs:"
    sed 's/^/  /' results
}

# bench_hs NAME CLIENT_OPTS...: connections/s of s_time -new.
bench_hs() {
    _name=$1
    shift
    start_server hs-default 0 /dev/null
    pd=$srv_pid portd=$port
    start_server hs-kcapi 0 "$conf"
    pk=$srv_pid portk=$port
    dv='' kv='' _r=0
    while [ $_r -lt "$runs" ]; do
        for v in default kcapi; do
            if [ $v = default ]; then p=$portd; else p=$portk; fi
            t0=$(now)
            out=$(OPENSSL_CONF=/dev/null "$OPENSSL" s_time -connect "127.0.0.1:$p" -new \
                -time "$btime" -www /tiny.bin "$@" 2>&1) || die "s_time ($v, $_name) failed: $out"
            t1=$(now)
            line=$(printf '%s\n' "$out" | grep 'connections in .* real seconds' | tail -n 1)
            n=$(printf '%s\n' "$line" | sed -n 's/^\([0-9][0-9]*\) connections in.*/\1/p')
            per_conn=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9][0-9]*\) bytes read per connection.*/\1/p')
            [ "${n:-0}" -gt 0 ] || die "s_time ($v, $_name) made no connection: $out"
            # Every connection must have read the whole response.
            [ "$per_conn" = "$resp_len" ] ||
                die "s_time ($v, $_name): $per_conn bytes per connection, expected $resp_len"
            rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", n / (b - a) }')
            if [ $v = default ]; then dv="$dv $rate"; else kv="$kv $rate"; fi
        done
        _r=$((_r + 1))
    done
    # Killed: no counters from these servers (the bulk runs check the path).
    kill "$pd" "$pk" 2>/dev/null
    wait "$pd" "$pk" 2>/dev/null
    echo "$_name|handshakes/s|$dv|$kv" >>results
    note "$_name: handshakes/s default:$dv kcapi-aio:$kv"
}

# bench_bulk NAME CLIENT_OPTS...: MiB/s of one fetch of bulk.bin (whole
# connection: handshake included), RUNS times per server.
bench_bulk() {
    _name=$1
    shift
    start_server bulk-default "$runs" /dev/null
    pd=$srv_pid portd=$port
    start_server bulk-kcapi "$runs" "$conf"
    pk=$srv_pid portk=$port
    dv='' kv='' _r=0
    while [ $_r -lt "$runs" ]; do
        for v in default kcapi; do
            if [ $v = default ]; then p=$portd; else p=$portk; fi
            t0=$(now)
            fetch bulk bulk.bin /dev/null "$p" 300 "$@" ||
                die "bulk ($v, $_name): fetch failed or the body differs: $(tail -n 3 bulk.err)"
            t1=$(now)
            rate=$(awk -v m="$bmib" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", m / (b - a) }')
            if [ $v = default ]; then dv="$dv $rate"; else kv="$kv $rate"; fi
        done
        _r=$((_r + 1))
    done
    rm -f bulk.resp
    wait_exit "$pd" 60
    wait_exit "$pk" 60
    # The kcapi-aio server must have encrypted everything it served.
    check_stats "$_name bench server" srv-bulk-kcapi.err $((runs * bmib * 64)) $((runs * bmib * 1024 * 1024))
    [ "$failures" -eq 0 ] || die "bench ($_name): the kcapi-aio server's counters do not cover its work"
    echo "$_name|MiB/s|$dv|$kv" >>results
    note "$_name: MiB/s default:$dv kcapi-aio:$kv"
}

if [ "$mode" = test ]; then run_test; else run_bench; fi

if [ "$failures" -gt 0 ]; then
    echo "tls-lab $mode: $failures failure(s)"
    exit 1
fi
echo "tls-lab $mode: all passed"
