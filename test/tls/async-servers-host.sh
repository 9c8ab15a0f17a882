#!/usr/bin/env bash
# The async-server runs of async-servers-lab.sh on this host, with whatever path the
# provider takes here (software without AF_ALG): s_server and Debian's HAProxy, each with
# and without async mode, 16 concurrent clients over CBC EtM, CBC MtE and GCM, every
# file's bytes checked. The kernel paths run in the lab (guest-tests.list).
#   async-servers-host.sh OPENSSL MODULE_DIR SOURCE_DIR
# Skips (77) when HAProxy cannot be fetched (no package mirror).
set -euo pipefail
openssl=$1 moddir=$2 src=$3
if ! root=$("$src/test/kernel-lab/fetch-haproxy.sh"); then
    echo "SKIP: no HAProxy (test/kernel-lab/fetch-haproxy.sh failed)"
    exit 77
fi
runs=s_server:etm+mte+gcm,s_server-async:etm+mte+gcm
# Debian's HAProxy is linked with the system's OpenSSL: it loads a module built
# against that one (a build against 3.5/3.6 covers s_server only).
if [[ $("$openssl" version) == "$(/usr/bin/openssl version 2>/dev/null)" ]]; then
    runs=$runs,haproxy:etm+mte+gcm,haproxy-async:etm+mte+gcm
else
    echo "-- $("$openssl" version | cut -d' ' -f1-2) is not the system's OpenSSL: s_server only, no HAProxy"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/async-servers-host.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
KCAPI_AIO_MODULE_DIR=$moddir ASYNC_LAB_EXPECT=any ASYNC_LAB_KIB=16 \
    ASYNC_LAB_RUNS=$runs \
    sh "$src/test/tls/async-servers-lab.sh" test "$openssl" "$src/kcapi-aio.cnf" "$root"
