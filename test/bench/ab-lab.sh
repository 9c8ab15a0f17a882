#!/usr/bin/env bash
# The cost of an engine change, measured in the kernel lab: kaio-bench built
# from git revision BASE against kaio-bench of the working tree, in one VM,
# runs alternating (the order swaps every pair), so drift and a busy host hit
# both alike. TCG: only ratios and counts mean anything.
#
#   test/bench/ab-lab.sh BASE [--kernel 6.12] [--pairs 15] [-- KAIO-BENCH ARGS...]
#
# Default kaio-bench arguments:
#   --mode cbc-enc,ctr,gcm-enc --size 256 --batch 16 --coalesce --rounds 3 --round-ms 100
# Prints per mode and path: records/s of the tree over BASE's (median of the
# pairs, interquartile range) and syscalls per record of each. Every run checks its bytes
# (kaio-bench fails on a wrong byte, and so does this script).
# Builds: build-bench (the tree, Release, as run-lab-bench.sh) and
# build-ab/REV (BASE, from git archive); the console goes to build-bench/ab-REV.log.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
base=${1:?usage: ab-lab.sh BASE [--kernel K] [--pairs N] [-- KAIO-BENCH ARGS]}
shift
kernel=6.12 pairs=15
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ab-lab: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
args=("$@")
((${#args[@]})) || args=(--mode cbc-enc,ctr,gcm-enc --size 256 --batch 16 --coalesce --rounds 3 --round-ms 100)

rev=$(git -C "$src" rev-parse --short "$base")
tree=$src/build-bench
abdir=$src/build-ab/$rev
[[ -f $tree/CMakeCache.txt ]] || cmake -S "$src" -B "$tree" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tree" --target kaio-bench -j2 >/dev/null
if [[ ! -x $abdir/b/modules/kaio-bench ]]; then
  rm -rf "$abdir"
  mkdir -p "$abdir/src"
  git -C "$src" archive "$base" | tar -x -C "$abdir/src"
  cmake -S "$abdir/src" -B "$abdir/b" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$abdir/b" --target kaio-bench -j2 >/dev/null
fi
cp "$abdir/b/modules/kaio-bench" "$tree/modules/kaio-bench-base"

# The guest's script: busybox sh, in the module dir.
{
  echo 'rc=0'
  echo "i=1; while [ \$i -le $pairs ]; do"
  echo '  if [ $((i % 2)) -eq 1 ]; then order="base tree"; else order="tree base"; fi'
  echo '  for who in $order; do'
  echo '    if [ $who = base ]; then b=./kaio-bench-base; else b=./kaio-bench; fi'
  echo "    \$b ${args[*]} >out.txt 2>&1 || rc=1"
  echo '    sed "s/^BENCH /BENCH who=$who pair=$i /" out.txt'
  echo '  done'
  echo '  i=$((i + 1))'
  echo 'done'
  echo 'exit $rc'
} >"$tree/modules/ab-run.sh"

log=$tree/ab-$rev.log
echo "ab-lab: kernel $kernel, $pairs pairs, BASE $rev vs tree; kaio-bench ${args[*]}" >&2
"$src/test/kernel-lab/run.sh" --kernel "$kernel" --build-dir "$tree" --timeout 1800 -- \
  sh "$tree/modules/ab-run.sh" >"$log" 2>&1 || true
grep -q '^KLAB-RESULT command PASS' "$log" || { echo "ab-lab: the guest run failed (see $log)" >&2; exit 1; }

echo "kernel $kernel; tree over $rev (BASE); kaio-bench ${args[*]}; $pairs pairs"
echo
echo "| mode | path | records/s tree/BASE (median of pairs [IQR]) | syscalls/record BASE | syscalls/record tree |"
echo "|---|---|---|---|---|"
sed -n 's/^  | BENCH //p' "$log" | awk '
  { delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["verified"] != "yes") bad = 1
    k = v["mode"] " " v["path"]
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    rps[k, v["who"], v["pair"]] = v["rps"]; sc[k, v["who"]] = v["syscalls_per_record"]; np[v["pair"]] = 1 }
  END {
    for (x = 1; x <= nk; x++) {
      k = order[x]; n = 0
      for (p in np) if (rps[k, "base", p] > 0 && rps[k, "tree", p] > 0) r[++n] = rps[k, "tree", p] / rps[k, "base", p]
      for (i = 2; i <= n; i++) { t = r[i]; for (j = i - 1; j >= 1 && r[j] > t; j--) r[j + 1] = r[j]; r[j + 1] = t }
      med = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
      q1 = r[int((n - 1) * 0.25 + 1.5)]; q3 = r[int((n - 1) * 0.75 + 1.5)]
      split(k, mp, " ")
      printf "| %s | %s | %.3f [%.3f-%.3f] | %s | %s |\n", mp[1], mp[2], med, q1, q3, sc[k, "base"], sc[k, "tree"]
    }
    if (bad) { print "ab-lab: a run was not verified" > "/dev/stderr"; exit 1 } }'
