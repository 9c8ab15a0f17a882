#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the kernel lab need.
# Safe to run again; does nothing when all are present.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config libssl-dev openssl libaio-dev check   # build
  python3-cryptography-vectors                                           # NIST CAVP vectors
  curl file                                                              # TLS interop client (test/tls), file(1)
  qemu-system-x86 qemu-system-arm busybox-static cpio kmod xz-utils      # kernel lab (amd64, arm64)
  dpkg-dev devscripts                                                    # OpenSSL 3.5/3.6 from source
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross                            # arm64 cross build
  libssl-dev:arm64 libaio-dev:arm64 check:arm64                          #   (multiarch)
  clang-14 libclang-rt-14-dev                                            # libFuzzer (test/fuzz)
)
missing=() update=0
# The :arm64 development packages come through multiarch. libssl-dev:arm64 must have the same
# version as libssl-dev:amd64, so apt may upgrade the amd64 one with it.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-deps: dpkg --add-architecture arm64"
  dpkg --add-architecture arm64
  update=1
fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  update=1
fi
if ((update)); then
  apt-get update -qq
fi
if ((${#missing[@]})); then
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
