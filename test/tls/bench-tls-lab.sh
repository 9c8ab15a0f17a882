#!/usr/bin/env bash
# TLS benchmark in the kernel lab (not a test): inside one guest boot,
# `openssl s_server` with kcapi-aio (the guest kernel does the records) vs
# the default provider alone, side by side; handshakes/s (s_time -new) and
# MiB/s (bulk fetch checked byte for byte). The guest part is
# `tls-lab.sh bench`; this boots the lab with a one-line test list for it.
#
#   usage: bench-tls-lab.sh [--kernel 6.12] [--build-dir DIR] [--timeout SECS]
#   environment (passed to the guest): BENCH_RUNS (3), BENCH_TIME seconds per
#   s_time run (4), BENCH_MIB per bulk fetch (8)
#
# Figures are VM figures under TCG (emulated CPU, one vCPU shared by client and
# server): compare the two columns with each other, never with a host run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
kernel=6.12 build_dir=$src/build timeout=1500
while (($#)); do
    case $1 in
        --kernel) kernel=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-tls-lab: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
build_dir=$(cd "$build_dir" && pwd)

for v in BENCH_RUNS BENCH_TIME BENCH_MIB; do
    [[ ${!v:-1} =~ ^[0-9]+$ ]] || { echo "bench-tls-lab: $v must be a whole number" >&2; exit 2; }
done
list=$(mktemp "${TMPDIR:-/tmp}/bench-tls-lab.XXXXXX")
trap 'rm -f "$list"' EXIT
# The guest's own limit stays under the host's boot timeout.
# KCAPI_AIO_CPU_DRIVERS=kernel: the lab's AES-NI drivers run on the CPU, where auto would stay in process.
echo "default tls-bench KLAB_TIMEOUT=$((timeout - 60)) TLS_LAB_KERNELS=all KCAPI_AIO_CPU_DRIVERS=kernel" \
    "BENCH_RUNS=${BENCH_RUNS:-3} BENCH_TIME=${BENCH_TIME:-4} BENCH_MIB=${BENCH_MIB:-8}" \
    "sh @SOURCE_DIR@/test/tls/tls-lab.sh bench @OPENSSL_BIN@ @SOURCE_DIR@/kcapi-aio.cnf" >"$list"

rc=0
"$src/test/kernel-lab/run.sh" --kernel "$kernel" --build-dir "$build_dir" --list "$list" \
    --timeout "$timeout" || rc=$?

# The table again, without the console's prefixes.
log=$build_dir/kernel-lab/$kernel/console-default.log
echo
sed -n '/| BENCH-TABLE/,/| BENCH-END/s/^  | //p' "$log" 2>/dev/null || true
exit "$rc"
