#!/usr/bin/env bash
# Reproduces the benchmark figures in the kernel lab (qemu TCG: only ratios and
# counts mean anything; never compare these rates with host rates).
#
#   test/bench/run-lab-bench.sh [--engine-kernels "6.1 6.12 7.2"] [--pipe-kernel 6.12]
#                               [--quick] [--skip-build] [--only engine|pipe] [--out DIR]
#
# 1. kaio-bench (engine level, build-bench, OpenSSL 3.0): 16 x 256-byte records,
#    every mode, aio batch vs 16 sync calls (+ CBC decryption coalesced), one VM
#    run per kernel.
# 2. pipe-bench (provider level, build-bench35, OpenSSL 3.5): the pipeline sweep
#    n = 1..32 of 256 B and 16 KiB records, one VM run per record size.
# Each VM run is sized to stay under ~5 minutes. Consoles and tables go to
# --out (default build-bench35/lab-bench); the tables are printed at the end.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
engine_kernels="6.1 6.12 7.2" pipe_kernel=6.12 quick=0 build=1 only='' out=''
while (($#)); do
  case $1 in
    --engine-kernels) engine_kernels=$2; shift 2 ;;
    --pipe-kernel) pipe_kernel=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --skip-build) build=0; shift ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-lab-bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

b30=$src/build-bench b35=$src/build-bench35
out=${out:-$b35/lab-bench}
mkdir -p "$out"
ossl35=${KCAPI_AIO_CACHE:-$HOME/.cache/kcapi-aio}/openssl-3.5

if ((build)); then
  [[ -f $b30/CMakeCache.txt ]] || cmake -S "$src" -B "$b30" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$b30" --target kaio-bench kcapi-aio -j2 >/dev/null
  if [[ $only != engine ]]; then
    [[ -d $ossl35 ]] || { echo "run-lab-bench: $ossl35 missing (OpenSSL 3.5 prefix)" >&2; exit 2; }
    [[ -f $b35/CMakeCache.txt ]] ||
      cmake -S "$src" -B "$b35" -DCMAKE_BUILD_TYPE=Release -DKCAPI_AIO_OPENSSL_PREFIX="$ossl35" >/dev/null
    cmake --build "$b35" --target pipe-bench kcapi-aio -j2 >/dev/null
  fi
fi

if ((quick)); then
  eargs=(--rounds 5 --round-ms 100) pargs=(--rounds 3 --round-ms 100)
else
  eargs=(--rounds 21 --round-ms 300) pargs=(--rounds 9 --round-ms 300)
fi

status=0
# run_vm NAME BUILD KERNEL PROGRAM ARGS...: one VM run; its output lines in $out/NAME.txt
run_vm() {
  local name=$1 bdir=$2 kernel=$3
  shift 3
  echo "== $name: kernel $kernel: $*" >&2
  {
    echo "# kernel $kernel; command: test/kernel-lab/run.sh --kernel $kernel --build-dir ${bdir#"$src"/} -- $*"
    "$src/test/kernel-lab/run.sh" --kernel "$kernel" --build-dir "$bdir" --timeout 420 -- "$@" 2>&1 |
      tee "$out/$name.console" | sed -n 's/^  | //p; /^KLAB-RESULT/p'
  } >"$out/$name.txt" || true
  grep -q '^KLAB-RESULT command PASS' "$out/$name.txt" || { echo "run-lab-bench: $name did not pass (see $out/$name.console)" >&2; status=1; }
}

if [[ $only != pipe ]]; then
  for k in $engine_kernels; do
    run_vm "engine-$k" "$b30" "$k" kaio-bench --mode all --size 256 --batch 16 --coalesce "${eargs[@]}"
  done
fi
if [[ $only != engine ]]; then
  # One VM run per size: both in one run take ~5 minutes of TCG.
  for size in 256 16384; do
    run_vm "pipe-$pipe_kernel-$size" "$b35" "$pipe_kernel" pipe-bench --sizes $size --pipes 1,2,4,8,16,32 "${pargs[@]}"
  done
fi

# ---- tables ----
if [[ $only != pipe ]]; then
  echo
  echo "### Issue 3: 16 x 256-byte AES-128-CBC records, one aio batch vs 16 sync calls (engine, kaio-bench)"
  echo
  echo "| kernel | aio/sync records/s (median of paired rounds [IQR]) | syscalls/record aio | syscalls/record sync | io_submit/batch aio | kernel ops/record aio |"
  echo "|---|---|---|---|---|---|"
  for k in $engine_kernels; do
    f=$out/engine-$k.txt
    [[ -f $f ]] || continue
    awk -v k="$k" '
      /^BENCH / { delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (v["mode"] == "cbc-enc" && v["path"] == "aio") { r = v["ratio"] " [" v["ratio_q1"] "-" v["ratio_q3"] "]"; sa = v["syscalls_per_record"]; sub_ = v["io_submit_per_batch"]; ko = v["kernel_ops_per_record"]; ok = v["verified"] }
        if (v["mode"] == "cbc-enc" && v["path"] == "sync") { ss = v["syscalls_per_record"] } }
      END { printf "| %s | %s%s | %s | %s | %s | %s |\n", k, r, ok == "yes" ? "" : " (NOT VERIFIED)", sa, ss, sub_, ko }' "$f"
  done
  for k in $engine_kernels; do
    f=$out/engine-$k.txt
    [[ -f $f ]] || continue
    echo
    echo "#### kaio-bench, kernel $k, all modes"
    echo '```'
    grep -v '^BENCH \|^KLAB-RESULT' "$f"
    echo '```'
  done
fi
pipe_files=()
for size in 256 16384; do [[ -f $out/pipe-$pipe_kernel-$size.txt ]] && pipe_files+=("$out/pipe-$pipe_kernel-$size.txt"); done
if [[ $only != engine ]] && ((${#pipe_files[@]})); then
  echo
  echo "### Issue 4: pipeline sweep, kernel $pipe_kernel (provider, pipe-bench; ratio = paired records/s over single-sync)"
  echo
  echo "| mode | size | n | pipe-aio ratio [IQR] | pipe-sync ratio [IQR] | kernel ops/update (aio) | syscalls/update (aio) | io_submit/update (aio) | syscalls/update (sync) | single: syscalls/record |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk '
    /^BENCH / { delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      key = v["mode"] " " v["size"] " " v["n"]
      if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
      if (v["verified"] != "yes") bad[key] = 1
      if (v["variant"] == "pipe-aio") { ra[key] = v["ratio"] " [" v["ratio_q1"] "-" v["ratio_q3"] "]"; ko[key] = v["kernel_ops_per_batch"]; sa[key] = v["syscalls_per_batch"]; su[key] = v["io_submit_per_batch"] }
      if (v["variant"] == "pipe-sync") { rs[key] = v["ratio"] " [" v["ratio_q1"] "-" v["ratio_q3"] "]"; ss[key] = v["syscalls_per_batch"] }
      if (v["variant"] == "single-sync") { s1[key] = v["syscalls_per_record"] } }
    END { for (i = 1; i <= nk; i++) { k = order[i]; split(k, p, " ")
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%s |\n", p[1], p[2], p[3], ra[k], rs[k], ko[k], sa[k], su[k], ss[k], s1[k], (k in bad) ? " NOT VERIFIED" : "" } }' \
    "${pipe_files[@]}"
  for f in "${pipe_files[@]}"; do
    echo
    echo "#### pipe-bench, kernel $pipe_kernel"
    echo '```'
    grep -v '^BENCH \|^KLAB-RESULT' "$f"
    echo '```'
  done
fi
exit "$status"
