#!/usr/bin/env bash
# Builds the kernel-lab initramfs (uncompressed newc cpio: the guest unpacks it
# faster than it could decompress one under TCG).
#   mkinitramfs.sh --kernel-dir KDIR --module-dir DIR --tests-dir DIR --series S
#                  --out FILE [--extra PATH]...
# KDIR is a fetch-kernels.sh cache entry. DIR (the build's module dir) and every
# --extra path land at the same absolute path in the guest, so paths compiled into
# the test programs still hold; every ELF file's shared libraries come along.
# For an arm64 series (6.12-arm64) the programs are the cross build's, busybox is
# the one fetch-kernels.sh unpacked into KDIR, and libraries come from the host's
# :arm64 multiarch packages (/usr/lib/aarch64-linux-gnu), found with readelf.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

kdir='' moddir='' testsdir='' series='' out=''
extras=()
while (($#)); do
  case $1 in
    --kernel-dir) kdir=$2; shift 2 ;;
    --module-dir) moddir=$2; shift 2 ;;
    --tests-dir) testsdir=$2; shift 2 ;;
    --series) series=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    *) klab_die "mkinitramfs: unknown argument $1" ;;
  esac
done
[[ -n $kdir && -n $moddir && -n $testsdir && -n $out ]] || klab_die "mkinitramfs: missing arguments"
arch=$(klab_arch "$series")
if [[ $arch == arm64 ]]; then
  klab_need cpio:cpio xz:xz-utils readelf:binutils
  busybox=$kdir/busybox
  [[ -x $busybox ]] || klab_die "no arm64 busybox in $kdir (run fetch-kernels.sh --refresh $series)"
else
  klab_need busybox:busybox-static cpio:cpio xz:xz-utils ldd:libc-bin
  busybox=$(command -v busybox)
fi
kver=$(cat "$kdir/kver")
kmods=$kdir/lib/modules/$kver

stage=$(mktemp -d "${out}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,klab/ko,klab/tests,etc,lib64}

# --- kernel modules -------------------------------------------------------
# What AF_ALG AES needs, per FACTS.md; whichever of these are built in are skipped.
# crypto_user answers NETLINK_CRYPTO queries (the probe reads driver flags through it).
default_targets=(af_alg algif_skcipher algif_aead cbc ecb ctr gcm ghash_generic gf128mul crypto_null
                 cryptd crypto_simd aesni_intel ghash_clmulni_intel crypto_user)
# arm64: the ARMv8 Crypto Extensions drivers (aes-ce-*, ghash-ce: its gcm(aes)) and NEON.
if [[ $arch == arm64 ]]; then
  default_targets=(af_alg algif_skcipher algif_aead cbc ecb ctr gcm ghash_generic gf128mul crypto_null
                   aes_ce_cipher aes_ce_blk aes_neon_blk ghash_ce crypto_user)
fi
# aesni-intel (arm64: ghash-ce) registers its own gcm(aes), so no-gcm also leaves it out: cbc/ctr
# then run on the built-in generic AES.
nogcm_targets=(af_alg algif_skcipher algif_aead cbc ecb ctr)
# device: a virtio-crypto device (qemu's builtin cryptodev backend) serves cbc(aes);
# the guest CPU has no AES-NI, so ctr/gcm run on the generic C AES. virtio_pci is
# a module on 6.1 (built in later).
device_targets=(af_alg algif_skcipher algif_aead cbc ecb ctr gcm ghash_generic gf128mul crypto_null
                crypto_user virtio_pci virtio_crypto)

# Load order (dependencies first) for a set of module names, from modules.dep.
load_order() {
  awk -v want="$*" '
    function norm(p) { sub(/.*\//, "", p); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", p); gsub(/-/, "_", p); return p }
    function visit(m,   i, n, d) {
      if (m in seen) return
      seen[m] = 1
      n = split(deps[m], d, " ")
      for (i = 1; i <= n; i++) visit(d[i])
      print m "\t" path[m]
    }
    {
      split($0, parts, ":"); m = norm(parts[1]); path[m] = parts[1]
      n = split(parts[2], d, " "); deps[m] = ""
      for (i = 1; i <= n; i++) deps[m] = deps[m] " " norm(d[i])
    }
    END { n = split(want, w, " "); for (i = 1; i <= n; i++) if (w[i] in path) visit(w[i]) }
  ' "$kmods/modules.dep"
}

for set in default no-gcm device; do
  case $set in
    default) targets=("${default_targets[@]}") ;;
    no-gcm) targets=("${nogcm_targets[@]}") ;;
    device) targets=("${device_targets[@]}") ;;
  esac
  : >"$stage/klab/modules-$set"
  while IFS=$'\t' read -r name rel; do
    echo "$name" >>"$stage/klab/modules-$set"
    [[ -f $stage/klab/ko/$name.ko ]] && continue
    case $rel in
      *.xz) xz -dc "$kmods/$rel" >"$stage/klab/ko/$name.ko" ;; # busybox insmod wants plain .ko
      *) cp "$kmods/$rel" "$stage/klab/ko/$name.ko" ;;
    esac
  done < <(load_order "${targets[@]}")
done
grep -q '^af_alg$' "$stage/klab/modules-default" ||
  grep -qE '/af_alg\.ko$' "$kmods/modules.builtin" 2>/dev/null ||
  klab_die "kernel $kver has no af_alg module"

# --- programs and their libraries ---------------------------------------
cp "$busybox" "$stage/bin/busybox"
mkdir -p "$stage/$moddir"
cp -a "$moddir/." "$stage/$moddir/"
for x in "${extras[@]}"; do
  [[ -e $x ]] || { klab_log "warning: extra path $x does not exist, skipped"; continue; }
  mkdir -p "$stage/$(dirname "$x")"
  cp -a "$x" "$stage/$(dirname "$x")/"
done

is_elf() { [[ -f $1 && ! -L $1 ]] && [[ $(head -c4 "$1" | od -An -c | tr -d ' ') == 177ELF ]]; }

# Every shared library an ELF file needs, as ldd resolves it on the host (rpath
# and runpath included); the loader itself is in the list too.
declare -A have=()
add_lib() {
  local lib=$1
  [[ -n ${have[$lib]:-} ]] && return
  have[$lib]=1
  mkdir -p "$stage/$(dirname "$lib")"
  cp -L "$lib" "$stage/$lib"
  # ldd lists a program's whole closure; readelf only a file's own NEEDED entries.
  [[ $arch == arm64 ]] && scan_elf "$lib"
  # libcrypto loads its providers (legacy.so, ...) from a sibling directory.
  if [[ $lib == */libcrypto.so.* && -d $(dirname "$lib")/ossl-modules ]]; then
    local om f
    om=$(dirname "$lib")/ossl-modules
    mkdir -p "$stage/$om"
    for f in "$om"/*.so; do
      [[ -e $f && $(basename "$f") != kcapi-aio* ]] && cp -L "$f" "$stage/$om/" && scan_elf "$f"
    done
  fi
}
# A foreign (arm64) ELF cannot run ldd: its NEEDED entries are looked up in its
# RUNPATH/RPATH, then in the multiarch directories, and its interpreter is added.
foreign_libs() {
  local f=$1 need dirs=() d interp
  interp=$(readelf -lW "$f" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [[ -n $interp ]] && echo "$interp"
  while read -r d; do dirs+=("$d"); done < <(readelf -dW "$f" 2>/dev/null |
    sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p' | tr ':' '\n')
  dirs+=(/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
  while read -r need; do
    for d in "${dirs[@]}"; do
      if [[ -e $d/$need ]]; then echo "$d/$need"; continue 2; fi
    done
    echo "$need => not found"
  done < <(readelf -dW "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
}
scan_elf() {
  local f=$1 line lib
  if [[ $arch == arm64 ]]; then
    while read -r line; do
      case $line in
        *'=> not found'*) klab_log "warning: $f: ${line%% *} not found" ;;
        /*) add_lib "$line" ;;
      esac
    done < <(foreign_libs "$f")
    return
  fi
  while read -r line; do
    case $line in
      *'=> not found'*) klab_log "warning: $f: ${line%% *} not found" ;;
      *'=> /'*) lib=${line#*=> }; add_lib "${lib%% (*}" ;;
      /*) add_lib "${line%% (*}" ;;
    esac
  done < <(ldd "$f" 2>/dev/null || true)
}
scan_elf "$busybox" # nothing unless busybox is the dynamic build
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  scan_elf "${f#"$stage"}"
done < <(find "$stage/$moddir" "${extras[@]/#/$stage}" -type f -print0 2>/dev/null)
# Debug info only makes the archive (and the guest's RAM) bigger.
strip="strip"
[[ $arch == arm64 ]] && strip=aarch64-linux-gnu-strip
if command -v $strip >/dev/null && [[ -z ${KLAB_NO_STRIP:-} ]]; then
  while IFS= read -r -d '' f; do
    if is_elf "$f"; then $strip --strip-debug "$f" 2>/dev/null || true; fi
  done < <(find "$stage" -path "$stage/klab/ko" -prune -o -type f -print0)
fi

# --- configuration --------------------------------------------------------
echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
echo 'root:x:0:' >"$stage/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$stage/etc/hosts"
if [[ -f /etc/ssl/openssl.cnf ]]; then mkdir -p "$stage/etc/ssl"; cp /etc/ssl/openssl.cnf "$stage/etc/ssl/"; fi
cp "$klab_dir/guest-init.sh" "$stage/init"
chmod 755 "$stage/init"
cp "$testsdir"/*.list "$stage/klab/tests/"
printf 'MODULE_DIR=%q\nKERNEL_SERIES=%q\n' "$moddir" "$series" >"$stage/klab/config"

(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
