#!/bin/busybox sh
# /init of the kernel-lab initramfs (busybox ash). Loads the scenario's crypto
# modules, runs /klab/tests/SCENARIO.list and powers off. The host reads the
# KLAB-* lines from the serial console; everything else is for humans.
# shellcheck shell=sh

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin /root
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev
# The kernel found no /dev/console in the archive (it holds no device nodes, so it
# can be built without root): attach stdio to the console ourselves.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# /tmp stays on the (writable) initramfs: a tmpfs over it would hide a build tree under /tmp.
chmod 1777 /tmp
# Loopback for the TLS tests (s_server and s_client on 127.0.0.1).
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null || echo "klab: loopback not up"

# The scenario decides which modules exist: no automatic loading behind its back.
rm -f /sbin/modprobe
echo /bin/false >/proc/sys/kernel/modprobe

scenario=default
read -r cmdline </proc/cmdline
for w in $cmdline; do
  case $w in klab.scenario=*) scenario=${w#klab.scenario=} ;; esac
done
# shellcheck disable=SC1091 # written by mkinitramfs.sh: MODULE_DIR KERNEL_SERIES
. /klab/config
echo "KLAB-BOOT kernel=$(uname -r) scenario=$scenario uptime=$(cut -d' ' -f1 /proc/uptime)"

modset=default
[ "$scenario" = no-gcm ] && modset=no-gcm
[ "$scenario" = device ] && modset=device
loaded=
while read -r m; do
  if insmod "/klab/ko/$m.ko"; then
    loaded="$loaded $m"
  else
    echo "KLAB-MODULE-FAIL $m"
  fi
done <"/klab/modules-$modset"
echo "KLAB-MODULES$loaded"

case $scenario in
  no-aio) echo 0 >/proc/sys/fs/aio-max-nr ;;
esac

export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
# Defaults the host suites also use; an entry's VAR=value overrides them.
export OPENSSL_CONF=/dev/null CK_DEFAULT_TIMEOUT=1200
KLAB_KERNEL_RELEASE=$(uname -r)
export KLAB_SCENARIO="$scenario" KLAB_KERNEL="$KERNEL_SERIES" KLAB_KERNEL_RELEASE

now() { cut -d' ' -f1 /proc/uptime; }

# One entry: NAME [VAR=value ...] PROGRAM [ARGS...]
run_one() {
  name=$1
  shift
  limit=600
  envs=
  while [ $# -gt 0 ]; do
    case $1 in
      KLAB_TIMEOUT=*) limit=${1#KLAB_TIMEOUT=} ;;
      [A-Za-z_]*=*) envs="$envs $1" ;;
      *) break ;;
    esac
    shift
  done
  prog=$1
  shift
  if [ -x "$MODULE_DIR/$prog" ]; then
    path=$MODULE_DIR/$prog
  elif path=$(command -v "$prog"); then
    :
  else
    echo "KLAB-BEGIN $name"
    echo "  | klab: program '$prog' is not in $MODULE_DIR (not built?)"
    echo "KLAB-RESULT $name FAIL 0.00 rc=127"
    return
  fi
  echo "KLAB-BEGIN $name"
  t0=$(now)
  # Prefix the output so a test can never print a KLAB- line of its own.
  # shellcheck disable=SC2086 # envs is a list of words on purpose
  (cd "$MODULE_DIR" && timeout "$limit" env $envs "$path" "$@" </dev/null 2>&1; echo $? >/tmp/rc) |
    sed 's/^/  | /'
  rc=$(cat /tmp/rc)
  t1=$(now)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  case $rc in
    0) status=PASS ;;
    77) status=SKIP ;;
    *) status=FAIL ;;
  esac
  note=
  # busybox timeout exits with the killed child's status (128+SIGTERM).
  [ "$rc" = 143 ] && awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s >= l) }' && note=" timeout=${limit}s"
  echo "KLAB-RESULT $name $status $secs rc=$rc$note"
}

set -f
while read -r line; do
  # shellcheck disable=SC2086 # split the entry into words
  set -- $line
  [ $# -ge 2 ] && run_one "$@"
done <"/klab/tests/$scenario.list"
set +f

echo "KLAB-DONE uptime=$(now)"
sync
poweroff -f
# If poweroff failed, a panic with panic=-1 and qemu -no-reboot still ends the VM.
exit 1
