# shellcheck shell=bash
# Shared by tls-sserver.sh and bench-tls.sh (sourced, bash).

# tls_make_conf OUT MODULE_DIR SOURCE_DIR: the repo's kcapi-aio.cnf, loading
# the module from this build. Exports OPENSSL_MODULES for a config that names
# no module path (the repo's relies on OpenSSL's module directory).
tls_make_conf() {
    local out=$1 moddir=$2 srcdir=$3
    [[ -f $moddir/kcapi-aio.so ]] || { echo "no $moddir/kcapi-aio.so (not built?)" >&2; return 1; }
    [[ -f $srcdir/kcapi-aio.cnf ]] || { echo "no $srcdir/kcapi-aio.cnf" >&2; return 1; }
    # An active module line (if the file gets one) must point at this build.
    sed -E "s|^([[:space:]]*module[[:space:]]*=).*kcapi-aio\.so.*$|\1 $moddir/kcapi-aio.so|" \
        "$srcdir/kcapi-aio.cnf" >"$out"
    export OPENSSL_MODULES=$moddir
}

# tls_check_conf OPENSSL CONF: the config loads kcapi-aio in a plain command.
tls_check_conf() {
    local out
    if ! out=$(OPENSSL_CONF=$2 "$1" list -providers 2>&1) || ! grep -q 'kcapi-aio' <<<"$out"; then
        printf '%s\n' "$out" >&2
        echo "$2 does not load kcapi-aio" >&2
        return 1
    fi
}

# tls_make_cert OPENSSL: cert.pem + key.pem (P-256, CN=localhost) in the
# current directory; setup only, so not through the provider.
tls_make_cert() {
    OPENSSL_CONF=/dev/null "$1" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=localhost -days 2 -keyout key.pem -out cert.pem 2>/dev/null
}

# tls_wait_port PID OUTFILE: the port s_server printed ("ACCEPT 127.0.0.1:N").
tls_wait_port() {
    local pid=$1 f=$2 i p
    for ((i = 0; i < 100; i++)); do
        p=$(sed -nE 's/^ACCEPT 127\.0\.0\.1:([0-9]+).*/\1/p' "$f")
        [[ -n $p ]] && { echo "$p"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}

# tls_counter FILE NAME...: sum of the named counters in a KCAPI_AIO_STATS dump.
tls_counter() {
    local f=$1 names
    shift
    names=$(IFS='|'; echo "$*")
    grep -oE "(^|[^a-z_])($names)[[:space:]]*[=:][[:space:]]*[0-9]+" "$f" 2>/dev/null |
        grep -oE '[0-9]+$' | awk '{s += $1} END {print s + 0}'
}
