#!/usr/bin/env bash
# Async TLS servers in the kernel lab (a benchmark, not a test): inside one guest boot,
# `openssl s_server -WWW` and Debian's HAProxy, each with and without async mode
# (-async, ssl-mode-async), serve CLIENTS concurrent s_client fetches (every file's
# sha256 checked) through kcapi-aio; pairs of runs alternate async / plain. Prints
# the throughput ratio async/plain (median of the pairs, min-max) and, per run kind,
# the exact counts: async_pauses, max_inflight (depth), io_submit calls and syscalls
# per record. The guest part is `async-servers-lab.sh bench`.
#
#   usage: bench-async-servers-lab.sh [--kernel 6.12] [--scenario device|default]
#                                     [--build-dir DIR] [--timeout SECS]
#   environment (passed to the guest): BENCH_PAIRS (5), BENCH_SUITES (etm+mte: half the
#   clients each; a comma makes separate rows; gcm too), ASYNC_LAB_CLIENTS (16),
#   ASYNC_LAB_KIB (64), KCAPI_AIO_FAULT (s_server's fault rule, e.g.
#   peek=EAGAIN:1:1,peek=EAGAIN:3:1: the first looks for a completion miss)
#
# scenario device: virtio-crypto serves cbc(aes), backend auto puts CBC on it (GCM runs
# in process there); default: the AES-NI drivers, KCAPI_AIO_CPU_DRIVERS=kernel sends
# the records to the kernel. TCG, one vCPU for clients and servers: ratios only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
kernel=6.12 scenario=device build_dir=$src/build timeout=3000
while (($#)); do
    case $1 in
        --kernel) kernel=$2; shift 2 ;;
        --scenario) scenario=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-async-servers-lab: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
build_dir=$(cd "$build_dir" && pwd)
case $scenario in device) extra='' ;; default) extra='KCAPI_AIO_CPU_DRIVERS=kernel' ;;
    *) echo "bench-async-servers-lab: scenario device or default" >&2; exit 2 ;; esac
for v in BENCH_PAIRS ASYNC_LAB_CLIENTS ASYNC_LAB_KIB; do
    [[ ${!v:-1} =~ ^[0-9]+$ ]] || { echo "bench-async-servers-lab: $v must be a whole number" >&2; exit 2; }
done
[[ ${BENCH_SUITES:-etm} =~ ^[a-z,+]+$ ]] || { echo "bench-async-servers-lab: BENCH_SUITES: etm,mte,gcm (a + mixes them)" >&2; exit 2; }
[[ ${KCAPI_AIO_FAULT:-x} =~ ^[^[:space:]]+$ ]] || { echo "bench-async-servers-lab: KCAPI_AIO_FAULT has a space" >&2; exit 2; }

list=$(mktemp "${TMPDIR:-/tmp}/bench-async-servers.XXXXXX")
trap 'rm -f "$list"' EXIT
echo "$scenario async-bench KLAB_TIMEOUT=$((timeout - 60)) ASYNC_LAB_KERNELS=all $extra" \
    "BENCH_PAIRS=${BENCH_PAIRS:-5} BENCH_SUITES=${BENCH_SUITES:-etm+mte}" \
    "ASYNC_LAB_CLIENTS=${ASYNC_LAB_CLIENTS:-16} ASYNC_LAB_KIB=${ASYNC_LAB_KIB:-64}" \
    "${KCAPI_AIO_FAULT:+KCAPI_AIO_FAULT=$KCAPI_AIO_FAULT}" \
    "sh @SOURCE_DIR@/test/tls/async-servers-lab.sh bench @OPENSSL_BIN@ @SOURCE_DIR@/kcapi-aio.cnf @HAPROXY_ROOT@" >"$list"

rc=0
"$src/test/kernel-lab/run.sh" --kernel "$kernel" --scenario "$scenario" --build-dir "$build_dir" \
    --list "$list" --timeout "$timeout" || rc=$?

# The table again, without the console's prefixes.
log=$build_dir/kernel-lab/$kernel/console-$scenario.log
echo
sed -n '/| BENCH-TABLE/,/| BENCH-END/s/^  | //p' "$log" 2>/dev/null || true
exit "$rc"
