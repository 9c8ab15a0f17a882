#!/bin/sh
# run-fuzz.sh FUZZER SEED_DIR RUNS [WORK_DIR]
# RUNS = 0: replay every seed once. Otherwise a count-bounded libFuzzer session
# (one job, fixed seed) that starts from the seeds, writes new inputs to WORK_DIR
# (never to the seed dir) and prints executions and coverage (cov:, ft:).
# A crash or mismatch leaves its input as WORK_DIR/crash-* and fails.
set -eu
fuzzer=$1 seeds=$2 runs=$3 work=${4:-}
if [ "$runs" = 0 ]; then
  exec "$fuzzer" -runs=0 "$seeds"/*
fi
[ -n "$work" ] || { echo "run-fuzz.sh: WORK_DIR needed" >&2; exit 2; }
case $fuzzer in /*) ;; *) fuzzer=$PWD/$fuzzer ;; esac
case $seeds in /*) ;; *) seeds=$PWD/$seeds ;; esac
rm -rf "$work" && mkdir -p "$work/corpus"
cd "$work"
# -timeout: a generous per-input hang limit (TCG runs are slow); no time bound
# on the session itself, which ends after RUNS inputs.
"$fuzzer" -runs="$runs" -seed="${FUZZ_SEED:-1}" -max_len=4096 -timeout="${FUZZ_TIMEOUT:-300}" \
  -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$work/" corpus "$seeds" 2>"$work/log" &&
  rc=0 || rc=$?
# Executions, coverage, and (with KCAPI_AIO_STATS=1) which path did the work.
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done |^(ops|batches)_(aio|sync|software)=|^fallback' \
  "$work/log" || true
if [ "$rc" != 0 ]; then
  tail -n 60 "$work/log"
  ls "$work"/crash-* "$work"/timeout-* "$work"/leak-* 2>/dev/null || true
fi
exit "$rc"
