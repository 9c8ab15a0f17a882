#!/usr/bin/env bash
# Boots real Debian kernels under qemu (TCG) and runs tests against their AF_ALG.
#
#   run.sh [--kernel 6.1|6.12|7.2|all|6.12-arm64] [--scenario S] [--build-dir DIR] [--list FILE]
#          [--timeout SECS] [--refresh] [--keep]                 run the test list
#   run.sh [--kernel K] [--scenario S] [--build-dir DIR] -- PROGRAM [ARGS...]
#                                                                run one command in the guest
#   run.sh --fetch-only [--kernel K] [--refresh]                 only fill the kernel cache (and HAProxy's)
#
# Scenarios: default (all AF_ALG modules), no-gcm (gcm(aes) absent), no-aio
# (fs.aio-max-nr = 0), device (a virtio-crypto device serves cbc(aes), no AES-NI).
# Without --scenario the list runs every scenario that has
# entries; a command runs in "default". PROGRAM is looked up in DIR/modules, then
# in DIR, then in the guest's PATH (busybox). "all" is 6.1, 6.12 and 7.2 (amd64);
# 6.12-arm64 boots trixie's arm64 kernel under qemu-system-aarch64 -M virt and needs
# an arm64 build dir (cmake/aarch64-linux-gnu.cmake). Exit status: 0 when every guest test
# passed or skipped, 1 when one failed, timed out or went unreported, 2 on setup errors.
# Hang limits, not deadlines: each test has its own limit in the guest (KLAB_TIMEOUT,
# default 600 s); the host kills a guest whose console stays silent for longer than
# the scenario's largest test limit + 120 s, and one that runs longer than --timeout
# (default: the sum of the scenario's test limits + 300 s, which the guest cannot
# legitimately exceed).
# Environment: KCAPI_AIO_CACHE (cache root), KCAPI_AIO_DEBIAN_MIRROR (override the
# mirror read from /etc/apt), KLAB_QEMU_MEM (default 1G), KLAB_NO_STRIP=1,
# KLAB_TIMEOUT (a -- PROGRAM's in-guest limit, default 600 s).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

kernel=all scenario='' build_dir='' list=$klab_dir/guest-tests.list
boot_timeout='' refresh=() fetch_only=0 keep=0
cmd=()
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --list) list=$2; shift 2 ;;
    --timeout) boot_timeout=$2; shift 2 ;;
    --refresh) refresh=(--refresh); shift ;;
    --fetch-only) fetch_only=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; cmd=("$@"); break ;;
    *) klab_die "unknown argument '$1' (see --help)" ;;
  esac
done

if [[ $kernel == all ]]; then kernels=("${klab_series_all[@]}"); else klab_check_series "$kernel"; kernels=("$kernel"); fi
case ${scenario:-default} in default|no-gcm|no-aio|device) ;; *) klab_die "unknown scenario '$scenario'";; esac

klab_need cpio:cpio xz:xz-utils depmod:kmod timeout:coreutils
for k in "${kernels[@]}"; do
  if [[ $(klab_arch "$k") == arm64 ]]; then klab_need qemu-system-aarch64:qemu-system-arm
  else klab_need qemu-system-x86_64:qemu-system-x86 busybox:busybox-static; fi
done

# Debian's HAProxy (amd64) for the async-server tests, unpacked into the cache.
has_amd64=0
for k in "${kernels[@]}"; do [[ $(klab_arch "$k") == amd64 ]] && has_amd64=1; done
if ((fetch_only)); then
  "$klab_dir/fetch-kernels.sh" "${refresh[@]}" "${kernels[@]}"
  if ((has_amd64)); then "$klab_dir/fetch-haproxy.sh" "${refresh[@]}" >/dev/null; fi
  exit 0
fi

[[ -n $build_dir ]] || build_dir=$(cd "$klab_dir/../.." && pwd)/build
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || klab_die "build dir '$build_dir' does not exist (--build-dir)"
moddir=$build_dir/modules
[[ -d $moddir ]] || klab_die "$moddir does not exist: build the project first"
source_dir=$(cd "$klab_dir/../.." && pwd)

work_root=$build_dir/kernel-lab
mkdir -p "$work_root"

# Placeholders in guest-files.list and the test list: @SOURCE_DIR@, @BUILD_DIR@,
# and each NAME=value of BUILD/kernel-lab/placeholders (written by CMake: the
# build's openssl is not in CMakeCache.txt for a KCAPI_AIO_OPENSSL_PREFIX build).
declare -A placeholder=([SOURCE_DIR]=$source_dir [BUILD_DIR]=$build_dir)
if [[ -f $build_dir/kernel-lab/placeholders ]]; then
  while IFS='=' read -r k v; do
    if [[ $k =~ ^[A-Z_]+$ ]]; then placeholder[$k]=$v; fi
  done <"$build_dir/kernel-lab/placeholders"
fi
# An older build dir: the openssl CMake found, if it cached one.
if [[ -z ${placeholder[OPENSSL_BIN]:-} ]]; then
  v=$(sed -n 's/^OPENSSL_BIN:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
  if [[ -n $v ]]; then placeholder[OPENSSL_BIN]=$v; fi
fi
# fill_placeholders: stdin to stdout with the known placeholders replaced.
fill_placeholders() {
  local line k
  while IFS= read -r line || [[ -n $line ]]; do
    for k in "${!placeholder[@]}"; do line=${line//@$k@/${placeholder[$k]}}; done
    printf '%s\n' "$line"
  done
}

# HAPROXY_ROOT: fetched only when a list names it and an amd64 kernel boots.
if ((has_amd64)) && grep -qs '@HAPROXY_ROOT@' "$list" "$klab_dir/guest-files.list"; then
  placeholder[HAPROXY_ROOT]=$("$klab_dir/fetch-haproxy.sh" "${refresh[@]}") || klab_die "no haproxy (fetch-haproxy.sh)"
fi

# Host paths the guest also needs (guest-files.list), e.g. test vectors.
extras=()
files_list=$klab_dir/guest-files.list
if [[ -f $files_list ]]; then
  while read -r p _; do
    [[ -z $p || $p == \#* ]] && continue
    p=$(fill_placeholders <<<"$p")
    if [[ $p == *@*@* ]]; then klab_log "warning: guest-files.list: no value for $p, skipped"; continue; fi
    extras+=(--extra "$p")
  done <"$files_list"
fi

# Per-scenario test lists for the guest: "NAME [VAR=value...] PROGRAM [ARGS...]".
prepare_tests() {
  local dir=$1 s
  rm -rf "$dir"
  mkdir -p "$dir"
  if ((${#cmd[@]})); then
    local prog=${cmd[0]} found
    if [[ $prog == /* ]]; then
      [[ -e $prog ]] && extras+=(--extra "$prog")
    elif [[ ! -x $moddir/$prog ]]; then
      # Tools built outside the module dir (e.g. DIR/tools/...) ride along at their path.
      found=$(find "$build_dir" -maxdepth 3 -path "$work_root" -prune -o -type f -perm -u+x -name "$prog" -print 2>/dev/null | head -n1)
      if [[ -n $found ]]; then prog=$found; extras+=(--extra "$found"); fi
    fi
    # KLAB_TIMEOUT=SECS in the environment: the command's in-guest limit, as in the lists.
    [[ ${KLAB_TIMEOUT:-600} =~ ^[0-9]+$ ]] || klab_die "KLAB_TIMEOUT '$KLAB_TIMEOUT' is not a number of seconds"
    echo "command KLAB_TIMEOUT=${KLAB_TIMEOUT:-600} $prog ${cmd[*]:1}" >"$dir/${scenario:-default}.list"
    return
  fi
  [[ -f $list ]] || klab_die "test list $list not found"
  # "SCENARIO/3.5" entries run only in builds with the pipeline API (OpenSSL 3.5+),
  # "SCENARIO/3.0" only in builds without it: scripts/test.sh runs the lab for a
  # 3.0 and a 3.5 build, and a suite that needs one run goes to one of them.
  local has35=0
  grep -q '^KAIO_HAVE_EVP_PIPELINE:INTERNAL=1$' "$build_dir/CMakeCache.txt" 2>/dev/null && has35=1
  for s in default no-gcm no-aio device; do
    [[ -n $scenario && $s != "$scenario" ]] && continue
    awk -v s="$s" -v has35="$has35" '!/^[[:space:]]*(#|$)/ && ($1 == s || $1 == "all" || (has35 && $1 == s "/3.5") || (!has35 && $1 == s "/3.0")) { $1 = ""; sub(/^ +/, ""); print }' \
      "$list" | fill_placeholders >"$dir/$s.list"
    [[ -s $dir/$s.list ]] || rm -f "$dir/$s.list"
  done
}

# ctest's TIMEOUT (or ^C) stops us: take the guest down too rather than leave it running.
qemu_pidfile=$work_root/.qemu.$$.pid
# shellcheck disable=SC2317 # called from the trap
on_signal() {
  [[ -f $qemu_pidfile ]] && kill "$(cat "$qemu_pidfile")" 2>/dev/null
  rm -f "$qemu_pidfile"
  klab_log "interrupted"
  exit 1
}
trap on_signal TERM INT HUP

results=()   # "KERNEL SCENARIO NAME STATUS SECONDS [NOTE]" for the summary
boots=()     # "KERNEL SCENARIO WALL-SECONDS OUTCOME"
failed=0

# silence_watch LOG SECONDS: kills the guest when LOG stops growing for SECONDS.
silence_watch() {
  local log=$1 limit=$2 last=-1 size idle=0
  while sleep 5; do
    [[ -f $qemu_pidfile ]] || return 0
    size=$(stat -c %s "$log" 2>/dev/null || echo 0)
    if [[ $size != "$last" ]]; then last=$size idle=0; else idle=$((idle + 5)); fi
    if ((idle >= limit)); then
      echo "$limit" >"$log.silent"
      kill "$(cat "$qemu_pidfile")" 2>/dev/null
      return 0
    fi
  done
}

boot() {
  local series=$1 kdir=$2 img=$3 s=$4 log=$5
  local expected n t0 t1 rc=0 limits total silence watch
  expected=$(awk '{ print $1 }' "$work/tests/$s.list")
  n=$(wc -l <"$work/tests/$s.list")
  # Each test's in-guest limit (KLAB_TIMEOUT=, else 600 s): their sum bounds the
  # whole guest, their largest how long the console may legitimately stay silent.
  limits=$(awk '{ l = 600; for (i = 2; i <= NF; i++) if ($i ~ /^KLAB_TIMEOUT=/) { sub(/^KLAB_TIMEOUT=/, "", $i); l = $i }
                  sum += l; if (l > max) max = l } END { print sum + 0, max + 0 }' "$work/tests/$s.list")
  read -r total silence <<<"$limits"
  total=${boot_timeout:-$((total + 300))}
  silence=$((silence + 120))
  klab_log "booting $series ($(cat "$kdir/kver")), scenario $s, $n test(s), hang limits: ${silence}s silent, ${total}s in all"
  t0=$(date +%s.%N)
  rm -f "$log.silent"
  # stdin from /dev/null: qemu must not grab the terminal; the console goes to stdout.
  local qemu=(qemu-system-x86_64) console=ttyS0
  local cpu=max
  if [[ $(klab_arch "$series") == arm64 ]]; then
    qemu=(qemu-system-aarch64 -M virt) console=ttyAMA0
    # Debian's arm64 kernel signs and checks return addresses (pointer authentication);
    # emulating the architected algorithm (QARMA) is slow, the implementation-defined one is not.
    cpu=max,pauth-impdef=on
  fi
  local machine=(-cpu "$cpu")
  if [[ $s == device ]]; then
    # x86: no AES-NI, so the device's driver (priority 150) outranks the C AES (100).
    # arm64: the scenario loads no CE/NEON module, which would outrank it.
    [[ $(klab_arch "$series") == arm64 ]] || machine=(-cpu max,aes=off)
    machine+=(-object cryptodev-backend-builtin,id=c0 -device virtio-crypto-pci,cryptodev=c0)
  fi
  {
    timeout -k 10 "$total" "${qemu[@]}" -accel tcg "${machine[@]}" -smp 1 -m "${KLAB_QEMU_MEM:-1G}" \
      -nographic -no-reboot -nic none \
      -kernel "$kdir/vmlinuz" -initrd "$img" \
      -append "console=$console quiet panic=-1 klab.scenario=$s" </dev/null 2>&1 &
    echo $! >"$qemu_pidfile"
    wait $! && rc=0 || rc=$?
    echo "$rc" >"$log.rc"
  } | sed -u -E 's/\r//g; s/\x1b(\[[0-9;?]*[A-Za-z]|c)//g' | tee "$log" &
  watch_pid=$!
  silence_watch "$log" "$silence" &
  watch=$!
  # Waiting in the background lets the signal trap run while the guest is up.
  wait "$watch_pid" || true
  rm -f "$qemu_pidfile"
  kill "$watch" 2>/dev/null || true
  wait "$watch" 2>/dev/null || true
  rc=$(cat "$log.rc" 2>/dev/null || echo 125)
  t1=$(date +%s.%N)
  local wall outcome=ok
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [[ -f $log.silent ]]; then
    outcome="HANG: console silent for ${silence}s (guest killed)"
  elif ((rc == 124 || rc == 137)); then
    outcome="TIMEOUT after ${total}s (guest killed)"
  elif ! grep -q '^KLAB-DONE' "$log"; then
    outcome="guest ended without KLAB-DONE (qemu exit $rc)"
  fi
  if grep -q '^KLAB-MODULE-FAIL' "$log"; then
    outcome="module load failed: $(grep '^KLAB-MODULE-FAIL' "$log" | cut -d' ' -f2 | tr '\n' ' ')"
  fi
  [[ $outcome == ok ]] || failed=1
  boots+=("$series $s $wall $outcome")
  local name line status secs
  for name in $expected; do
    line=$(grep -m1 "^KLAB-RESULT $name " "$log" || true)
    if [[ -z $line ]]; then
      results+=("$series $s $name NOREPORT - (no result line: guest crashed or was killed?)")
      failed=1
      continue
    fi
    read -r _ _ status secs rest <<<"$line"
    results+=("$series $s $name $status $secs ${rest:-}")
    [[ $status == FAIL ]] && failed=1
  done
  return 0
}

for series in "${kernels[@]}"; do
  kdir=$("$klab_dir/fetch-kernels.sh" "${refresh[@]}" "$series" | awk '{ print $2 }')
  [[ -n $kdir && -f $kdir/.complete ]] || klab_die "kernel $series unavailable"
  kver=$(cat "$kdir/kver")
  # The build's objects must be the kernel's architecture.
  want='x86-64'
  [[ $(klab_arch "$series") == arm64 ]] && want='ARM aarch64'
  for o in "$moddir"/kcapi-aio.so "$moddir"/klab-afalg-check; do
    [[ -e $o ]] || continue
    file -L "$o" | grep -q "$want" || klab_die "$o is not built for $want (kernel $series): use a matching --build-dir"
  done
  gcm_state=absent
  if grep -qE '/gcm\.ko' "$kdir/lib/modules/$kver/modules.dep"; then gcm_state=module
  elif grep -qE '/gcm\.ko$' "$kdir/lib/modules/$kver/modules.builtin" 2>/dev/null; then gcm_state=built-in; fi
  klab_log "kernel $series: $kver ($(paste -sd' ' "$kdir/packages")); gcm is $gcm_state"
  work=$work_root/$series
  mkdir -p "$work"
  prepare_tests "$work/tests"
  scenarios=()
  for s in default no-gcm no-aio device; do [[ -f $work/tests/$s.list ]] && scenarios+=("$s"); done
  if ((!${#scenarios[@]})); then klab_log "no entries for kernel $series"; continue; fi
  if [[ $gcm_state == built-in ]] && [[ " ${scenarios[*]} " == *" no-gcm "* ]]; then
    klab_log "warning: gcm is built into $kver: the no-gcm scenario cannot remove it"
  fi
  t0=$(date +%s)
  "$klab_dir/mkinitramfs.sh" --kernel-dir "$kdir" --module-dir "$moddir" --tests-dir "$work/tests" \
    --series "$series" --out "$work/initramfs.cpio" "${extras[@]}"
  klab_log "initramfs $(du -h "$work/initramfs.cpio" | cut -f1) in $(($(date +%s) - t0))s"
  for s in "${scenarios[@]}"; do
    boot "$series" "$kdir" "$work/initramfs.cpio" "$s" "$work/console-$s.log"
  done
  ((keep)) || rm -f "$work/initramfs.cpio"
done

echo
echo "==== kernel-lab summary ===="
printf '%-6s %-8s %-8s %s\n' kernel scenario wall-s boot
for b in "${boots[@]}"; do
  read -r k s w o <<<"$b"
  printf '%-6s %-8s %-8s %s\n' "$k" "$s" "$w" "$o"
done
printf '%-6s %-8s %-32s %-8s %-8s %s\n' kernel scenario test result seconds note
for r in "${results[@]}"; do
  read -r k s n st sec note <<<"$r"
  printf '%-6s %-8s %-32s %-8s %-8s %s\n' "$k" "$s" "$n" "$st" "$sec" "${note:-}"
done
pass=0 fail=0 skip=0
for r in "${results[@]}"; do
  case $(awk '{ print $4 }' <<<"$r") in PASS) ((++pass)) ;; SKIP) ((++skip)) ;; *) ((++fail)) ;; esac
done
echo "kernel-lab: $pass passed, $skip skipped, $fail failed or unreported, ${#boots[@]} boot(s)"
exit "$failed"
