#!/bin/sh
# TLS servers in async mode (SSL_MODE_ASYNC) on kcapi-aio, inside the kernel lab
# (busybox ash, so POSIX sh only). Real servers, real clients on the guest's loopback:
#   s_server   openssl s_server -WWW [-async], OPENSSL_CONF = the repo's kcapi-aio.cnf
#   haproxy    Debian's HAProxy 2.6 terminating TLS [ssl-mode-async] with kcapi-aio.cnf
#              (or its ssl-provider keywords), busybox httpd behind it on loopback. HAProxy
#              keeps SSL_MODE_ASYNC on only while a handshake runs (it clears it in the
#              data state): its handshake records run in jobs, its data records do not.
# Each run: CLIENTS concurrent openssl s_client processes fetch one file each (a
# different one per client), every body compared with its original (sha256). The
# server prints kcapi-aio's counters when it exits (KCAPI_AIO_STATS=1); each run shows
# async_pauses, max_inflight, io_submit_calls, syscalls and the ops per path.
#
#   async-servers-lab.sh test  OPENSSL CNF HAPROXY_ROOT   the runs of ASYNC_LAB_RUNS, checked
#   async-servers-lab.sh bench OPENSSL CNF HAPROXY_ROOT   async vs not, paired, same VM
#
# OPENSSL is the build's openssl, CNF the repo's kcapi-aio.cnf, HAPROXY_ROOT what
# test/kernel-lab/fetch-haproxy.sh unpacked. Runs in the build's module dir unless
# KCAPI_AIO_MODULE_DIR names it. Exit 0 pass, 1 fail, 77 skip.
#
# Environment:
#   ASYNC_LAB_RUNS     SERVER:SUITE pairs, comma-separated (test mode), SERVER one of s_server,
#                      s_server-async, haproxy, haproxy-async; SUITE one of etm, mte, gcm
#                      (TLS 1.2 ECDHE-ECDSA AES-256-CBC-SHA384 with and without
#                      encrypt-then-MAC, AES-256-GCM-SHA384)
#   ASYNC_LAB_EXPECT   pause: the async servers' CBC records reach the kernel and
#                      s_server -async pauses (the device scenario; on 7.2 AF_ALG cannot
#                      bind the device: software, no pause); nopause: the records reach
#                      the kernel and no job pauses (CPU drivers forced into the kernel:
#                      their AIO completes inside io_submit); any: only the bytes
#   ASYNC_LAB_KERNELS  lab kernel series to run on ("6.12" default, a list, or "all")
#   ASYNC_LAB_CLIENTS  concurrent clients (16), ASYNC_LAB_KIB size of each file (64)
#   BENCH_PAIRS (5), BENCH_SUITES (etm+mte): bench mode, per server kind and suite,
#                      BENCH_PAIRS alternating async / non-async runs
#   ASYNC_LAB_HAPROXY_LOAD  conf (default): HAProxy reads kcapi-aio.cnf through
#                      OPENSSL_CONF; keywords: its ssl-provider-path, ssl-provider and
#                      ssl-propquery keywords load kcapi-aio (then OpenSSL's DRBG, an
#                      AES-256-CTR user, also fetches from kcapi-aio: kcapi-aio.cnf's
#                      random section keeps it on default)
#   KCAPI_AIO_FAULT    passed to s_server only (e.g. peek=EAGAIN:1:1: a look for a
#                      completion misses once, as on a device slower than TCG's)
#   ASYNC_LAB_FAULT_HAPROXY=1  HAProxy gets it too (and must pause then): its
#                      connections' jobs pause at once, each on its own eventfd
#                      (HAProxy inserts a job's async fd into its fd table as that
#                      connection's own and stops with "bug condition
#                      fdtab[fd].owner != NULL" on an fd two connections share)
# shellcheck shell=sh

mode=${1:-}
OPENSSL=${2:-}
CNF=${3:-}
HAROOT=${4:-}
case $mode in test|bench) ;; *) echo "usage: $0 test|bench OPENSSL CNF HAPROXY_ROOT" >&2; exit 2 ;; esac

EXPECT=${ASYNC_LAB_EXPECT:-any}
KERNELS=${ASYNC_LAB_KERNELS:-6.12}
if [ -n "${KLAB_KERNEL:-}" ] && [ "$KERNELS" != all ]; then
    case " $KERNELS " in
        *" $KLAB_KERNEL "*) ;;
        *) echo "SKIP: the async servers run on kernel(s) $KERNELS only (ASYNC_LAB_KERNELS), this is $KLAB_KERNEL"
           exit 77 ;;
    esac
fi
# 7.2 keeps AF_ALG off the device: the records run in software there.
if [ "$EXPECT" = pause ] && [ "${KLAB_KERNEL:-}" = 7.2 ]; then EXPECT=software; fi
CLIENTS=${ASYNC_LAB_CLIENTS:-16}
KIB=${ASYNC_LAB_KIB:-64}
HALOAD=${ASYNC_LAB_HAPROXY_LOAD:-conf}
case $HALOAD in conf|keywords) ;; *) echo "FAIL: ASYNC_LAB_HAPROXY_LOAD is conf or keywords"; exit 1 ;; esac
FAULT=${KCAPI_AIO_FAULT:-}
HAFAULT=
[ "${ASYNC_LAB_FAULT_HAPROXY:-0}" = 1 ] && HAFAULT=$FAULT
unset KCAPI_AIO_FAULT # servers only, never the clients or the setup

MODDIR=${KCAPI_AIO_MODULE_DIR:-$PWD}
HAPROXY=$HAROOT/usr/sbin/haproxy
[ -x "$OPENSSL" ] || { echo "FAIL: no openssl at '$OPENSSL' (guest-files.list, @OPENSSL_BIN@)"; exit 1; }
[ -f "$CNF" ] || { echo "FAIL: no config at '$CNF'"; exit 1; }
[ -f "$MODDIR/kcapi-aio.so" ] || { echo "FAIL: no $MODDIR/kcapi-aio.so"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/async-servers.XXXXXX") || exit 1
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
now() { cut -d' ' -f1 /proc/uptime; }

cd "$work" || exit 1
sed "s|^\([[:space:]]*module[[:space:]]*=\).*kcapi-aio\.so.*\$|\1 $MODDIR/kcapi-aio.so|" "$CNF" >kcapi.cnf
export OPENSSL_MODULES="$MODDIR"
conf=$work/kcapi.cnf
out=$(OPENSSL_CONF=$conf "$OPENSSL" list -providers 2>&1)
printf '%s\n' "$out" | grep -q kcapi-aio || { printf '%s\n' "$out"; die "$conf does not load kcapi-aio"; }
note "$("$OPENSSL" version), kernel $(uname -r), $(nproc) CPU(s), expect=$EXPECT, $CLIENTS clients x $KIB KiB${FAULT:+, fault rule for s_server: $FAULT}${HAFAULT:+ (and HAProxy)}"
if [ -x "$MODDIR/kcapi-aio-info" ]; then
    "$MODDIR/kcapi-aio-info" --provider-path "$MODDIR" 2>&1 | grep -E '^[a-z]+\(aes\)' | sed 's/^/   info: /'
fi

# Setup only, not through the provider.
OPENSSL_CONF=/dev/null "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=localhost -days 2 -keyout key.pem -out cert.pem >/dev/null 2>&1 || die "no certificate"
cat cert.pem key.pem >haproxy.pem
mkdir www
i=0
while [ $i -lt "$CLIENTS" ]; do
    head -c $((KIB * 1024)) /dev/urandom >"www/f$i.bin"
    i=$((i + 1))
done
(cd www && sha256sum f*.bin) >sums

# ---- servers ----

port=4433
# listening: a socket listens on 127.0.0.1:$port (state 0A in /proc/net/tcp); a test
# connection would use up one of s_server's -naccept.
listening() {
    awk -v want="$(printf '0100007F:%04X' "$port")" '$2 == want && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp
}
# next_port: the next port after $port that nothing listens on (a host run shares
# its loopback with other programs).
next_port() {
    port=$((port + 1))
    while cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v p="$(printf ':%04X' "$port")" 'substr($2, length($2) - 4) == p && $4 == "0A" { f = 1 } END { exit !f }'; do
        port=$((port + 1))
    done
}
# wait_listen PID: until the server listens on $port.
wait_listen() {
    _i=0
    while [ $_i -lt 600 ]; do
        listening && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# start_sserver ASYNC(0|1): s_server -WWW over www/, ends after $CLIENTS connections.
start_sserver() {
    next_port
    _a=
    [ "$1" = 1 ] && _a=-async
    (cd www && exec env KCAPI_AIO_STATS=1 ${FAULT:+KCAPI_AIO_FAULT=$FAULT} OPENSSL_CONF="$conf" \
        "$OPENSSL" s_server -accept "127.0.0.1:$port" -cert ../cert.pem -key ../key.pem -WWW \
        -naccept "$CLIENTS" -quiet $_a </dev/null >../srv.out 2>../srv.err) &
    srv_pid=$!
    pids="$pids $srv_pid"
    wait_listen "$srv_pid" || { cat srv.out srv.err; die "s_server did not start"; }
}

httpd_pid=
# start_haproxy ASYNC(0|1): HAProxy terminating TLS in front of busybox httpd.
start_haproxy() {
    [ -x "$HAPROXY" ] || die "no haproxy at '$HAPROXY' (test/kernel-lab/fetch-haproxy.sh, @HAPROXY_ROOT@)"
    if [ -z "$httpd_pid" ]; then
        _p=$port
        port=8079
        next_port
        hport=$port
        port=$_p
        busybox httpd -f -p "127.0.0.1:$hport" -h "$work/www" &
        httpd_pid=$!
        pids="$pids $httpd_pid"
    fi
    next_port
    {
        echo "global"
        echo "    nbthread 1"
        echo "    maxconn 256"
        [ "$1" = 1 ] && echo "    ssl-mode-async"
        if [ "$HALOAD" = keywords ]; then
            # As soon as a provider is named, OpenSSL loads no other by itself: default too.
            echo "    ssl-provider-path $MODDIR"
            echo "    ssl-provider kcapi-aio"
            echo "    ssl-provider default"
            echo "    ssl-propquery ?provider=kcapi-aio"
        fi
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 10s"
        echo "    timeout client 300s"
        echo "    timeout server 300s"
        echo "frontend tls"
        echo "    bind 127.0.0.1:$port ssl crt $work/haproxy.pem"
        echo "    default_backend web"
        echo "backend web"
        echo "    server httpd 127.0.0.1:$hport"
    } >haproxy.cfg
    _c=/dev/null
    [ "$HALOAD" = conf ] && _c=$conf
    env LD_LIBRARY_PATH="$HAROOT/usr/lib/x86_64-linux-gnu" KCAPI_AIO_STATS=1 OPENSSL_CONF="$_c" \
        ${HAFAULT:+KCAPI_AIO_FAULT=$HAFAULT} "$HAPROXY" -db -f haproxy.cfg </dev/null >srv.out 2>srv.err &
    srv_pid=$!
    pids="$pids $srv_pid"
    wait_listen "$srv_pid" || { cat srv.out srv.err; die "haproxy did not start"; }
    # httpd too (it starts before, but is not waited for).
    _p=$port
    port=$hport
    wait_listen "$httpd_pid" || die "busybox httpd did not start"
    port=$_p
}

# stop_server KIND: s_server ends by itself after its connections; HAProxy on
# SIGUSR1 (soft stop: it finishes, then exits and prints the counters).
stop_server() {
    [ "$1" = haproxy ] && kill -USR1 "$srv_pid" 2>/dev/null
    _i=0
    while [ $_i -lt 1200 ]; do
        if ! kill -0 "$srv_pid" 2>/dev/null; then
            wait "$srv_pid" || { fail "$1 exited with status $?"; tail -n 5 srv.err; return 1; }
            return 0
        fi
        sleep 0.1
        _i=$((_i + 1))
    done
    kill "$srv_pid" 2>/dev/null
    wait "$srv_pid" 2>/dev/null
    fail "$1 still running after 120 s (connections missing?)"
    return 1
}

# suite_opts SUITE: the client's options (the server offers all three).
suite_opts() {
    case $1 in
        etm) echo "-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384" ;;
        mte) echo "-tls1_2 -no_etm -cipher ECDHE-ECDSA-AES256-SHA384" ;;
        gcm) echo "-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384" ;;
        *) echo "unknown suite '$1'"; return 1 ;;
    esac
}

# clients SUITES: $CLIENTS s_client processes at once, client i fetches f$i.bin
# with suite i mod n of SUITES (s1+s2+...); sets ok (bodies equal to their
# originals) and secs (first start to last end).
clients() {
    _n=$(echo "$1" | awk -F+ '{ print NF }')
    _t0=$(now)
    _i=0 _cp=
    while [ $_i -lt "$CLIENTS" ]; do
        _o=$(suite_opts "$(echo "$1" | cut -d+ -f$((_i % _n + 1)))") || die "$_o"
        # shellcheck disable=SC2086 # an option list
        printf 'GET /f%s.bin HTTP/1.0\r\n\r\n' $_i |
            timeout 240 env OPENSSL_CONF=/dev/null "$OPENSSL" s_client -connect "127.0.0.1:$port" \
                -quiet -CAfile cert.pem -verify_return_error $_o >"c$_i.resp" 2>"c$_i.err" &
        _cp="$_cp $!"
        _i=$((_i + 1))
    done
    for _p in $_cp; do wait "$_p"; done
    secs=$(awk -v a="$_t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    ok=0 _i=0
    while [ $_i -lt "$CLIENTS" ]; do
        # The body is the response's last KIB KiB, after a 200 status line.
        if head -n 1 "c$_i.resp" | grep -q '^HTTP/1\.[01] 200' &&
            [ "$(tail -c $((KIB * 1024)) "c$_i.resp" | sha256sum | cut -d' ' -f1)" = \
              "$(sed -n "s/^\([0-9a-f]*\)  f$_i\.bin\$/\1/p" sums)" ] &&
            [ "$(wc -c <"c$_i.resp")" -lt $((KIB * 1024 + 400)) ]; then
            ok=$((ok + 1))
        else
            echo "client $_i: response wrong or missing ($(wc -c <"c$_i.resp") bytes):"
            head -n 1 "c$_i.resp"
            tail -n 3 "c$_i.err"
        fi
        rm -f "c$_i.resp"
        _i=$((_i + 1))
    done
}

# counter NAME...: sum of the named counters in the server's KCAPI_AIO_STATS dump.
counter() {
    awk -F= -v names="$*" 'BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 }
        ($1 in w) { s += $2 } END { print s + 0 }' srv.err
}

# run KIND ASYNC SUITE: one server, CLIENTS clients; prints one line with the counts;
# sets pauses, kops, sops, line.
run() {
    _kind=$1 _async=$2 _suite=$3
    if [ "$_kind" = s_server ]; then start_sserver "$_async"; else start_haproxy "$_async"; fi
    clients "$_suite"
    stop_server "$_kind"
    [ "$ok" -eq "$CLIENTS" ] || fail "$_kind async=$_async $_suite: $ok of $CLIENTS files correct"
    if ! grep -q '^ops_sync=' srv.err; then
        fail "$_kind: no kcapi-aio counters (KCAPI_AIO_STATS=1 did not print)"
        tail -n 20 srv.err
        pauses=0 kops=0 sops=0
        return
    fi
    pauses=$(counter async_pauses)
    kops=$(counter ops_aio ops_sync)
    sops=$(counter ops_software)
    _recs=$((kops + sops))
    _sc=$(counter syscalls)
    _sub=$(counter io_submit_calls)
    _fb=$(grep '^fallback\[' srv.err | tr '\n' ' ')
    line=$(printf '%-14s %-3s %2d/%d files ok %6.2f s  async_pauses=%s max_inflight=%s io_submit_calls=%s syscalls=%s ops_aio=%s ops_sync=%s ops_software=%s records=%s io_submit/record=%s syscalls/record=%s' \
        "$_kind$([ "$_async" = 1 ] && echo ' -async')" "$_suite" "$ok" "$CLIENTS" "$secs" \
        "$pauses" "$(counter max_inflight)" "$_sub" "$_sc" "$(counter ops_aio)" \
        "$(counter ops_sync)" "$sops" "$_recs" \
        "$(awk -v a="$_sub" -v r="$_recs" 'BEGIN { printf "%.3f", r ? a / r : 0 }')" \
        "$(awk -v a="$_sc" -v r="$_recs" 'BEGIN { printf "%.3f", r ? a / r : 0 }')")
    echo "RUN $line${_fb:+ $_fb}"
}

# What each run must show. A file of KIB KiB is at least KIB/16 records per client.
check_run() {
    _kind=$1 _async=$2 _suite=$3
    _min=$((CLIENTS * ((KIB + 15) / 16)))
    case $EXPECT in
        pause|nopause)
            # GCM runs in software on the device (its driver is the CPU's C AES).
            if [ "$_suite" != gcm ] || [ "$EXPECT" = nopause ]; then
                [ "$kops" -ge "$_min" ] || fail "$_kind $_suite: $kops kernel ops, expected at least $_min"
                [ "$sops" -eq 0 ] || fail "$_kind $_suite: $sops ops in software"
            fi
            if [ "$EXPECT" = nopause ]; then
                [ "$pauses" -eq 0 ] || fail "$_kind $_suite: $pauses pauses where the kernel's CPU driver completes inside io_submit"
            elif [ "$_async" = 1 ] && { [ "$_kind" = s_server ] || [ -n "$HAFAULT" ]; }; then
                [ "$pauses" -gt 0 ] || fail "$_kind -async $_suite: no job paused on the device"
            fi
            [ "$_async" = 1 ] || [ "$pauses" -eq 0 ] || fail "$_kind $_suite: $pauses pauses without async mode"
            ;;
        software)
            [ "$pauses" -eq 0 ] || fail "$_kind $_suite: $pauses pauses on the software path"
            [ "$sops" -ge "$_min" ] || fail "$_kind $_suite: $sops software ops, expected at least $_min"
            ;;
    esac
}

run_test() {
    for r in $(echo "${ASYNC_LAB_RUNS:-s_server-async:etm,s_server-async:mte,haproxy-async:etm,haproxy-async:mte}" | tr ',' ' '); do
        kind=${r%%:*} suite=${r#*:} async=0
        case $kind in *-async) async=1 kind=${kind%-async} ;; esac
        case $kind in s_server|haproxy) ;; *) die "unknown server '$kind' in ASYNC_LAB_RUNS" ;; esac
        run "$kind" "$async" "$suite"
        check_run "$kind" "$async" "$suite"
    done
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Bench: per server kind and suite, BENCH_PAIRS pairs of runs (the order inside a pair
# alternates); throughput = bytes of all files / the clients' wall time; ratio per pair.
run_bench() {
    pairs=${BENCH_PAIRS:-5}
    mib=$(awk -v c="$CLIENTS" -v k="$KIB" 'BEGIN { printf "%.4f", c * k / 1024 }')
    : >results
    for kind in s_server haproxy; do
        for suite in $(echo "${BENCH_SUITES:-etm+mte}" | tr "," " "); do
            pair=0 ratios='' av='' sv='' acnt='' scnt=''
            while [ $pair -lt "$pairs" ]; do
                if [ $((pair % 2)) -eq 0 ]; then order="1 0"; else order="0 1"; fi
                for a in $order; do
                    run "$kind" "$a" "$suite"
                    [ "$ok" -eq "$CLIENTS" ] || die "bench: bytes wrong, see above"
                    rate=$(awk -v m="$mib" -v s="$secs" 'BEGIN { printf "%.4f", m / s }')
                    if [ "$a" = 1 ]; then ar=$rate acnt=${line#*files ok}; else sr=$rate scnt=${line#*files ok}; fi
                done
                av="$av $ar" sv="$sv $sr"
                ratios="$ratios $(awk -v a="$ar" -v s="$sr" 'BEGIN { printf "%.3f", a / s }')"
                pair=$((pair + 1))
            done
            # shellcheck disable=SC2086
            echo "$kind|$suite|$(printf '%s\n' $ratios | median)|$(printf '%s\n' $ratios | sort -n | head -n 1)|$(printf '%s\n' $ratios | sort -n | tail -n 1)|$(printf '%s\n' $av | median)|$(printf '%s\n' $sv | median)|$ratios" >>results
            echo "COUNTS $kind $suite async:$acnt" >>counts
            echo "COUNTS $kind $suite plain:$scnt" >>counts
        done
    done
    echo
    echo "BENCH-TABLE kernel $(uname -r), $("$OPENSSL" version | cut -d' ' -f1-2), $CLIENTS clients x $KIB KiB, $pairs pairs${FAULT:+, fault rule $FAULT}"
    printf '%-9s %-4s %-22s %12s %12s\n' server suite "async/plain (min-max)" "async MiB/s" "plain MiB/s"
    while IFS='|' read -r k s med lo hi am sm _; do
        printf '%-9s %-4s %5.3f (%5.3f-%5.3f) %12.3f %12.3f\n' "$k" "$s" "$med" "$lo" "$hi" "$am" "$sm"
    done <results
    echo "counts of each kind's last run:"
    sed 's/^COUNTS /  /' counts
    echo "BENCH-END (ratio = async / plain throughput of the same server, medians of paired runs; TCG: ratios only)"
    echo "raw ratios:"
    sed 's/^\([^|]*\)|\([^|]*\)|.*|\([^|]*\)$/  \1 \2:\3/' results
}

if [ "$mode" = test ]; then run_test; else run_bench; fi
[ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null

if [ "$failures" -gt 0 ]; then
    echo "async-servers $mode: $failures failure(s)"
    exit 1
fi
echo "async-servers $mode: all passed"
