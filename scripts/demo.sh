#!/usr/bin/env bash
# The main job: builds kcapi-aio and shows it at work.
#   1. on this machine (whatever its kernel offers; without AF_ALG: the software path):
#      the provider's report, a round trip of all nine ciphers, and `openssl enc`
#      through kcapi-aio.cnf, byte-compared with OpenSSL's default provider;
#   2. in the kernel lab (a Debian kernel under qemu, default 6.12): the same
#      report and round trip, where the kernel does the work.
# Options: --kernel 6.1|6.12|7.2, --no-lab.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kernel=6.12 lab=1
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --no-lab) lab=0; shift ;;
    *) echo "usage: $0 [--kernel 6.1|6.12|7.2] [--no-lab]" >&2; exit 2 ;;
  esac
done

bash "$top/scripts/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc)" >/dev/null
mods=$top/build/modules

echo "== this machine ($(uname -r)): what kcapi-aio finds, and a round trip of the nine ciphers"
"$mods/kcapi-aio-info" --exercise

echo
echo "== openssl enc -aes-256-ctr through kcapi-aio.cnf, against the default provider"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 1048576 /dev/urandom >"$tmp/plain"
key=$(openssl rand -hex 32) iv=$(openssl rand -hex 16)
OPENSSL_MODULES=$mods OPENSSL_CONF=$top/kcapi-aio.cnf KCAPI_AIO_STATS=1 \
  openssl enc -aes-256-ctr -K "$key" -iv "$iv" -in "$tmp/plain" -out "$tmp/ours" 2>"$tmp/stats"
OPENSSL_CONF=/dev/null openssl enc -aes-256-ctr -K "$key" -iv "$iv" -in "$tmp/plain" -out "$tmp/ref"
cmp "$tmp/ours" "$tmp/ref"
OPENSSL_MODULES=$mods OPENSSL_CONF=$top/kcapi-aio.cnf \
  openssl enc -d -aes-256-ctr -K "$key" -iv "$iv" -in "$tmp/ours" | cmp - "$tmp/plain"
echo "1 MiB: same bytes as the default provider, and it decrypts back. kcapi-aio's counters:"
grep -E '^(ops_|bytes_|fallback)' "$tmp/stats" | sed 's/^/  /'

if ((lab)); then
  echo
  echo "== kernel lab: Debian $kernel under qemu (emulated, so slow; ratios and paths matter here, not speeds)"
  echo "   1. the same report and round trip: with AES-NI the kernel's drivers run on this CPU, so"
  echo "      auto keeps the work in process; with cpu_drivers = kernel the kernel does it;"
  echo "   2. batches of 16 independent 256-byte records: one io_submit each (aio) against 16 single"
  echo "      synchronous records, and CBC decryption / CTR of a batch as one kernel operation (coalesce);"
  echo "   3. a crypto device (qemu's virtio-crypto, no AES-NI): auto puts CBC on it, CTR/GCM in process"
  cat >"$tmp/demo.list" <<'LIST'
default report  kcapi-aio-info --exercise
default report-cpu-kernel KCAPI_AIO_CPU_DRIVERS=kernel kcapi-aio-info --exercise
default batches kaio-bench --mode cbc-dec,ctr --size 256 --batch 16 --coalesce --rounds 3 --round-ms 100
device  report-device kcapi-aio-info --exercise
LIST
  "$top/test/kernel-lab/run.sh" --kernel "$kernel" --build-dir "$top/build" --list "$tmp/demo.list" |
    grep -E '^(KLAB-RESULT|  \|)' | grep -v ' BENCH '
fi
