#!/usr/bin/env bash
# kcapi-aio-seal end to end: round trips (sizes x pipes x key sizes), output
# independent of -n, corruption / truncation / reordering / appending named by
# record with nothing of that record written, and one record at a time opened
# by an independent decryptor (seal_xcheck, default provider only).
#
#   seal-test.sh SEAL_BINARY XCHECK_BINARY
set -euo pipefail

seal=$1 xcheck=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0

ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

K128=000102030405060708090a0b0c0d0e0f
K192=000102030405060708090a0b0c0d0e0f1011121314151617
K256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
# Test only: a fixed prefix makes outputs comparable (see the tool's header comment).
export KCAPI_AIO_SEAL_NONCE_PREFIX=a1b2c3d4
R=1000          # a small record size keeps "many records" cheap
CH=$((R + 28))  # one sealed record of R bytes

mkdata() { head -c "$2" /dev/urandom >"$1"; }
# slice FILE OFFSET LENGTH: those bytes (no pipe into head: SIGPIPE under pipefail)
slice() { dd if="$1" iflag=skip_bytes,count_bytes bs=65536 skip="$2" count="$3" status=none; }
# sealed size of N plaintext bytes in records of R
sealed_size() { local n=$1 r=$2 recs; recs=$(( n == 0 ? 1 : (n + r - 1) / r )); echo $((20 + recs * 28 + n)); }

# --- round trips: sizes 0, 1, R-1, R, R+1, many, many exact; n = 1, 7, 16, 32 ---
for size in 0 1 $((R - 1)) $R $((R + 1)) $((37 * R + 123)) $((64 * R)); do
  mkdata "$tmp/p" "$size"
  for n in 1 7 16 32; do
    if ! "$seal" seal -k "$K256" -r $R -n $n -i "$tmp/p" -o "$tmp/s.$n" 2>"$tmp/err"; then
      bad "seal size=$size n=$n: $(cat "$tmp/err")"; continue
    fi
    if ! "$seal" open -k "$K256" -n $n -i "$tmp/s.$n" -o "$tmp/o" 2>"$tmp/err"; then
      bad "open size=$size n=$n: $(cat "$tmp/err")"; continue
    fi
    check "round trip size=$size n=$n" cmp -s "$tmp/p" "$tmp/o"
    [[ $n == 1 ]] || check "same sealed bytes for n=1 and n=$n (size=$size)" cmp -s "$tmp/s.1" "$tmp/s.$n"
  done
  check "sealed size of $size bytes is $(sealed_size "$size" $R)" \
    test "$(stat -c %s "$tmp/s.1")" -eq "$(sealed_size "$size" $R)"
done

# --- the default record size, key sizes, stdin/stdout ---
mkdata "$tmp/p" $((3 * 16384 + 5))
for k in $K128 $K192 $K256; do
  "$seal" seal -k $k <"$tmp/p" | "$seal" open -k $k >"$tmp/o" 2>"$tmp/err" || true
  check "pipe round trip, $(( ${#k} * 4 ))-bit key, default record size" cmp -s "$tmp/p" "$tmp/o"
done
check "default record size is 16384" test "$("$seal" seal -k $K128 -i "$tmp/p" | wc -c)" -eq "$(sealed_size $((3 * 16384 + 5)) 16384)"

# --- the format, checked by an independent decryptor (default provider only) ---
N=10
mkdata "$tmp/p" $((N * R - 300))   # records 0..9, the last one 700 bytes
"$seal" seal -k "$K192" -r $R -n 7 -i "$tmp/p" -o "$tmp/s"
for k in 0 3 6 7 9; do
  len=$(( k == N - 1 ? R - 300 : R ))
  "$xcheck" "$tmp/s" "$K192" $k >"$tmp/x" 2>"$tmp/err" || true
  check "record $k opened by plain EVP AES-192-GCM (default provider) matches" \
    cmp -s "$tmp/x" <(slice "$tmp/p" $((k * R)) $len)
done
: >"$tmp/empty"
"$seal" seal -k "$K128" -r $R -i "$tmp/empty" -o "$tmp/s0"
check "empty input: one empty last record, opened by plain EVP" \
  bash -c "'$xcheck' '$tmp/s0' $K128 0 | cmp -s - '$tmp/empty'"
check "header bytes: magic, version 1, key length, record size, nonce prefix" \
  test "$(head -c 20 "$tmp/s" | od -An -tx1 | tr -d ' \n')" = "4b41494f5345414c01180000000003e8a1b2c3d4"
check "record 3's nonce is prefix || 3" \
  test "$(slice "$tmp/s" $((20 + 3 * CH)) 12 | od -An -tx1 | tr -d ' \n')" = "a1b2c3d40000000000000003"

# --- damage: corrupted byte, reordered, truncated, appended, wrong key ---
N=40
mkdata "$tmp/p" $((N * R - 1))
"$seal" seal -k "$K256" -r $R -n 16 -i "$tmp/p" -o "$tmp/s"

# flip(file, offset): xor one byte with 0x01
flip() {
  local f=$1 off=$2 b
  b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
# expect_fail NAME FILE RECORD PATTERN N_PIPES: exit 1, message names the record and
# matches PATTERN, output is exactly records 0..RECORD-1
expect_fail() {
  local name=$1 f=$2 rec=$3 pat=$4 n=${5:-16} rc=0
  "$seal" open -k "$K256" -n "$n" -i "$f" -o "$tmp/o" 2>"$tmp/err" || rc=$?
  check "$name: exit status 1" test $rc -eq 1
  check "$name: message names record $rec" grep -q "record $rec (" "$tmp/err"
  check "$name: message says '$pat'" grep -q -- "$pat" "$tmp/err"
  check "$name: output is records 0..$((rec - 1)) and nothing of record $rec" \
    cmp -s "$tmp/o" <(head -c $((rec * R)) "$tmp/p")
  sed 's/^/       | /' "$tmp/err"
}

for k in 0 7 15 16 21 $((N - 1)); do
  for part in nonce ct tag; do
    cp "$tmp/s" "$tmp/c"
    case $part in
      nonce) off=$((20 + k * CH + 11)) ;;
      ct) off=$((20 + k * CH + 12 + 100)) ;;
      tag) off=$((20 + k * CH + CH - 1)) ;;
    esac
    [[ $k == $((N - 1)) && $part == tag ]] && off=$(( $(stat -c %s "$tmp/s") - 1 ))
    flip "$tmp/c" $off
    pat="authentication failed"
    [[ $part == nonce ]] && pat="out of place"
    expect_fail "corrupt $part of record $k (n=16)" "$tmp/c" $k "$pat"
  done
done
cp "$tmp/s" "$tmp/c"; flip "$tmp/c" $((20 + 9 * CH + 500))
expect_fail "corrupt record 9 with n=1" "$tmp/c" 9 "authentication failed" 1
expect_fail "corrupt record 9 with n=32" "$tmp/c" 9 "authentication failed" 32
rc=0; "$seal" open -k "$K256" -i "$tmp/c" -o "$tmp/o" 2>"$tmp/err" || rc=$?
check "message gives record 9's plaintext bytes" grep -q "record 9 (bytes 9000..9999): authentication failed" "$tmp/err"

# reordered: records 3 and 4 swapped whole, then only their nonces kept in place
swap() { # swap(file, a, b): exchange whole records a and b
  local f=$1 a=$2 b=$3
  dd if="$f" of="$tmp/ra" bs=1 skip=$((20 + a * CH)) count=$CH status=none
  dd if="$f" of="$tmp/rb" bs=1 skip=$((20 + b * CH)) count=$CH status=none
  dd if="$tmp/rb" of="$f" bs=1 seek=$((20 + a * CH)) conv=notrunc status=none
  dd if="$tmp/ra" of="$f" bs=1 seek=$((20 + b * CH)) conv=notrunc status=none
}
cp "$tmp/s" "$tmp/c"; swap "$tmp/c" 3 4
expect_fail "records 3 and 4 swapped" "$tmp/c" 3 "out of place: its nonce names record 4"
cp "$tmp/s" "$tmp/c"; swap "$tmp/c" 3 4
dd if="$tmp/s" of="$tmp/c" bs=1 skip=$((20 + 3 * CH)) seek=$((20 + 3 * CH)) count=12 conv=notrunc status=none
dd if="$tmp/s" of="$tmp/c" bs=1 skip=$((20 + 4 * CH)) seek=$((20 + 4 * CH)) count=12 conv=notrunc status=none
expect_fail "records 3 and 4 swapped, nonces left in place" "$tmp/c" 3 "authentication failed"

# truncated: the last record dropped; a few bytes cut; only the header left
head -c $((20 + (N - 1) * CH)) "$tmp/s" >"$tmp/c"
expect_fail "last record dropped" "$tmp/c" $((N - 2)) "truncated after it"
head -c $(( $(stat -c %s "$tmp/s") - 5 )) "$tmp/s" >"$tmp/c"
expect_fail "last 5 bytes cut" "$tmp/c" $((N - 1)) "authentication failed"
head -c $((20 + 16 * CH)) "$tmp/s" >"$tmp/c"
expect_fail "stream cut after a full batch (16 records)" "$tmp/c" 15 "truncated after it"
head -c 20 "$tmp/s" >"$tmp/c"
expect_fail "header only" "$tmp/c" 0 "ends after the header"
head -c $((20 + 5 * CH + 10)) "$tmp/s" >"$tmp/c"
rc=0; "$seal" open -k "$K256" -i "$tmp/c" -o "$tmp/o" 2>"$tmp/err" || rc=$?
check "a record shorter than nonce+tag: exit 1, named" bash -c "[[ $rc == 1 ]] && grep -q 'record 5 (from byte 5000): truncated' '$tmp/err'"
check "... and records 0..4 written" cmp -s "$tmp/o" <(head -c $((5 * R)) "$tmp/p")

# appended: another stream's first record after the last one
cp "$tmp/s" "$tmp/c"; slice "$tmp/s" 20 $CH >>"$tmp/c"
expect_fail "a record appended" "$tmp/c" $((N - 1)) "authentication failed"
check "... and only that record is named" test "$(grep -c 'record [0-9]* (' "$tmp/err")" -eq 1
# a whole record appended to a stream whose last record is full
mkdata "$tmp/p10" $((10 * R))
"$seal" seal -k "$K256" -r $R -i "$tmp/p10" -o "$tmp/s10"
cp "$tmp/s10" "$tmp/c"; slice "$tmp/s10" 20 $CH >>"$tmp/c"
rc=0; "$seal" open -k "$K256" -i "$tmp/c" -o "$tmp/o" 2>"$tmp/err" || rc=$?
check "a whole record appended: exit 1, record 9 is the last one yet data follows" \
  bash -c "[[ $rc == 1 ]] && grep -q 'record 9 (bytes 9000..9999): authentication failed: this record is the last one, yet data follows it' '$tmp/err'"
check "... and records 0..8 written" cmp -s "$tmp/o" <(head -c $((9 * R)) "$tmp/p10")
# the same with a record of another file in the middle (same key, other prefix)
KCAPI_AIO_SEAL_NONCE_PREFIX=01020304 "$seal" seal -k "$K256" -r $R -i "$tmp/p" -o "$tmp/other"
cp "$tmp/s" "$tmp/c"
dd if="$tmp/other" of="$tmp/c" bs=1 skip=$((20 + 5 * CH)) seek=$((20 + 5 * CH)) count=$CH conv=notrunc status=none
expect_fail "record 5 from another file" "$tmp/c" 5 "nonce prefix is not this file's"

# wrong key, wrong key length
rc=0; "$seal" open -k "${K256/00/ff}" -i "$tmp/s" -o "$tmp/o" 2>"$tmp/err" || rc=$?
check "wrong key: exit 1, record 0, nothing written" \
  bash -c "[[ $rc == 1 ]] && grep -q 'record 0 (bytes 0..999): authentication failed' '$tmp/err' && grep -q 'nothing was written' '$tmp/err' && [[ ! -s '$tmp/o' ]]"
rc=0; "$seal" open -k "$K128" -i "$tmp/s" -o "$tmp/o" 2>"$tmp/err" || rc=$?
check "16-byte key for a 32-byte stream: exit 1, says so" bash -c "[[ $rc == 1 ]] && grep -q '32-byte key' '$tmp/err'"

# --- usage ---
for args in "seal" "seal -k 0011" "seal -k $K128 -n 0" "seal -k $K128 -n 33" "seal -k $K128 -r 0" "frob -k $K128"; do
  rc=0; "$seal" $args </dev/null >/dev/null 2>&1 || rc=$?
  check "usage error exits 2: $args" test $rc -eq 2
done
rc=0; KCAPI_AIO_SEAL_NONCE_PREFIX=xyz "$seal" seal -k $K128 </dev/null >/dev/null 2>&1 || rc=$?
check "a bad test nonce prefix is refused" test $rc -ne 0

# --- the random nonce prefix: two seals differ, both open ---
mkdata "$tmp/p" 5000
env -u KCAPI_AIO_SEAL_NONCE_PREFIX "$seal" seal -k $K128 -r $R -i "$tmp/p" -o "$tmp/s1"
env -u KCAPI_AIO_SEAL_NONCE_PREFIX "$seal" seal -k $K128 -r $R -i "$tmp/p" -o "$tmp/s2"
check "random prefixes differ between two seals" bash -c "! cmp -s '$tmp/s1' '$tmp/s2'"
check "both open" bash -c "'$seal' open -k $K128 -i '$tmp/s1' | cmp -s - '$tmp/p' && '$seal' open -k $K128 -i '$tmp/s2' | cmp -s - '$tmp/p'"

# --- --stats: one pipeline call per n records, and the provider's counters ---
mkdata "$tmp/p" $((40 * R))
"$seal" seal -k $K128 -r $R -n 16 -i "$tmp/p" -o "$tmp/s" --stats 2>"$tmp/err"
sed 's/^/       | /' "$tmp/err"
check "--stats: 40 records in 3 pipeline calls" grep -q "40 record(s) sealed in 3 pipeline call(s) of up to 16" "$tmp/err"
check "--stats: the provider's counters" grep -q "^  batches_" "$tmp/err"
batches=$(awk -F= '/^  batches_(aio|sync|software)=/ { s += $2 } END { print s + 0 }' "$tmp/err")
check "--stats: the provider counted one batch per pipeline call (3, got $batches)" test "$batches" -eq 3

echo "$checks checks, $fails failed"
((fails == 0))
