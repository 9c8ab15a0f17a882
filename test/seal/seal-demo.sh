#!/bin/sh
# kcapi-aio-seal-demo [SIZE] [PIPES]: seals SIZE bytes (default 1 MiB) of random
# data with --stats, opens it with --stats, compares, then opens a copy with one
# byte of record 7 flipped (must fail and name record 7). POSIX sh and busybox
# tools only: it is built into the module dir so the kernel lab can run it:
#   test/kernel-lab/run.sh --kernel 6.12 --build-dir BUILD -- BUILD/modules/kcapi-aio-seal-demo
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
seal=$dir/kcapi-aio-seal
if [ ! -x "$seal" ]; then
  echo "SKIP: kcapi-aio-seal is built only against OpenSSL 3.5+ (EVP_CipherPipelineUpdate)"
  exit 77
fi
size=${1:-1048576} pipes=${2:-16} r=16384
key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
tmp=${TMPDIR:-/tmp}/kcapi-aio-seal-demo.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
head -c "$size" /dev/urandom >"$tmp/p"

echo "== seal $size bytes, records of $r, $pipes per pipeline call"
"$seal" seal -k $key -r $r -n "$pipes" -i "$tmp/p" -o "$tmp/s" --stats 2>&1
echo "== open"
"$seal" open -k $key -n "$pipes" -i "$tmp/s" -o "$tmp/o" --stats 2>&1
cmp "$tmp/p" "$tmp/o"
echo "== round trip: identical ($(wc -c <"$tmp/s") sealed bytes)"

# Flip one ciphertext byte of record 7: header 20 + 7 records of r+28, past the nonce.
off=$((20 + 7 * (r + 28) + 12 + 100))
b=$(dd if="$tmp/s" bs=1 skip=$off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$tmp/s" bs=1 seek=$off conv=notrunc 2>/dev/null
echo "== open with record 7 corrupted (must fail)"
rc=0
"$seal" open -k $key -n "$pipes" -i "$tmp/s" -o "$tmp/o" --stats 2>&1 || rc=$?
written=$(wc -c <"$tmp/o")
echo "== exit status $rc, $written bytes written (records 0..6: $((7 * r)))"
[ "$rc" = 1 ] && [ "$written" = $((7 * r)) ]
