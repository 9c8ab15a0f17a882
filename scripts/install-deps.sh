#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the kernel lab need.
# Safe to run again; does nothing when all are present.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config libssl-dev openssl libaio-dev check   # build
  python3-cryptography-vectors                                           # NIST CAVP vectors
  curl                                                                   # TLS interop client (test/tls)
  qemu-system-x86 busybox-static cpio kmod xz-utils                      # kernel lab
  dpkg-dev devscripts                                                    # OpenSSL 3.5 from source
  clang-14 libclang-rt-14-dev                                            # libFuzzer (test/fuzz)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
