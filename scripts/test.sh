#!/usr/bin/env bash
# The project's test command: builds and tests everything a change must pass.
#   1. against the system OpenSSL 3.0: every host test, then the kernel lab
#      (Debian kernels 6.1, 6.12 and 7.2 under qemu) on that build;
#   2. against OpenSSL 3.5 built from Debian's source (scripts/openssl-src.sh 3.5):
#      every host test, including the pipeline API, and the kernel lab;
#   3. against OpenSSL 3.6 (scripts/openssl-src.sh 3.6, sid's source): every host test,
#      and the kernel lab on one kernel (6.12, default scenario);
#   4. the host tests once more under AddressSanitizer + UndefinedBehaviorSanitizer;
#      then the fuzz build (clang, libFuzzer, ASan+UBSan, against 3.5 unless --no-35):
#      a count-bounded differential fuzz session and every allocation failing in
#      turn, on the host and in the kernel lab (6.12, aio and sync), and in the lab's
#      device scenario (6.12) the ASYNC job tests, dying connections included;
#   5. the arm64 cross build (cmake/aarch64-linux-gnu.cmake), everything, warnings as errors,
#      and the kernel lab on trixie's arm64 6.12 under qemu-system-aarch64 (default scenario);
#   6. the Debian packages (scripts/deb-check.sh): amd64 built, installed, used and purged;
#      arm64 built from the cross build and inspected.
# Options: --quick (host tests on 3.0 only), --no-lab, --no-35, --no-36, --no-asan (also
# drops the fuzz build), --no-arm64, --no-deb.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
quick=0 lab=1 o35=1 o36=1 asan=1 arm64=1 deb=1
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --no-lab) lab=0 ;;
    --no-35) o35=0 ;;
    --no-36) o36=0 ;;
    --no-asan) asan=0 ;;
    --no-arm64) arm64=0 ;;
    --no-deb) deb=0 ;;
    *) echo "usage: $0 [--quick] [--no-lab] [--no-35] [--no-36] [--no-asan] [--no-arm64] [--no-deb]" >&2; exit 2 ;;
  esac
done
((quick)) && { lab=0; o35=0; o36=0; asan=0; arm64=0; deb=0; }

bash "$top/scripts/install-deps.sh"

# build DIR [cmake args...]: configure and build one tree.
build() {
  local dir=$1; shift
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
}
# suite DIR LABEL: run one label's tests of a tree.
suite() {
  echo "== ctest -L $2 in ${1#"$top"/}"
  ctest --test-dir "$1" -L "$2" --output-on-failure -j "$jobs"
}

build "$top/build"
suite "$top/build" host
((lab)) && suite "$top/build" kernel-lab

if ((o35)); then
  prefix=$(bash "$top/scripts/openssl-src.sh" 3.5 | tail -n 1)
  build "$top/build-35" -DKCAPI_AIO_OPENSSL_PREFIX="$prefix"
  suite "$top/build-35" host
  ((lab)) && suite "$top/build-35" kernel-lab
fi

if ((o36)); then
  prefix=$(bash "$top/scripts/openssl-src.sh" 3.6 | tail -n 1)
  build "$top/build-36" -DKCAPI_AIO_OPENSSL_PREFIX="$prefix"
  suite "$top/build-36" host
  # The kernel paths do not depend on the OpenSSL release beyond what 3.5 covers:
  # one kernel, one scenario.
  if ((lab)); then
    echo "== kernel lab 6.12 (default scenario) in build-36"
    "$top/test/kernel-lab/run.sh" --kernel 6.12 --scenario default --build-dir "$top/build-36"
  fi
fi

if ((asan)); then
  build "$top/build-asan" -DKCAPI_AIO_SANITIZE=ON
  # In-process tests only: the openssl binary, valgrind and evp_test are not
  # instrumented. Leaks are checked on the provider's whole life in one
  # process (load, the nine ciphers, unload) rather than in the suites, whose
  # forked Check children exit holding what their parent set up.
  echo "== ctest -L host under ASan+UBSan in build-asan"
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$top/build-asan" -L host -E 'tls_sserver|async_servers|consttime|evp-vectors' \
    --output-on-failure -j "$jobs"
  echo "== LeakSanitizer: kcapi-aio-info --exercise"
  ASAN_OPTIONS=detect_leaks=1 "$top/build-asan/modules/kcapi-aio-info" --exercise >/dev/null

  # Fuzz build: only what the fuzz label and its lab list need.
  fuzz_args=()
  ((o35)) && fuzz_args=(-DKCAPI_AIO_OPENSSL_PREFIX="$prefix")
  CC=clang-14 cmake -S "$top" -B "$top/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKCAPI_AIO_FUZZ=ON "${fuzz_args[@]}" >/dev/null
  cmake --build "$top/build-fuzz" -j "$jobs" --target fuzz_evp test_allocfail klab-afalg-check \
    test_async test_async_conns >/dev/null
  suite "$top/build-fuzz" fuzz
  if ((lab)); then
    echo "== kernel lab 6.12: test/fuzz/guest-tests.list on build-fuzz"
    "$top/test/kernel-lab/run.sh" --build-dir "$top/build-fuzz" --kernel 6.12 --scenario default \
      --list "$top/test/fuzz/guest-tests.list"
    echo "== kernel lab 6.12 device: ASYNC jobs and dying connections under ASan (build-fuzz)"
    "$top/test/kernel-lab/run.sh" --build-dir "$top/build-fuzz" --kernel 6.12 --scenario device \
      --list "$top/test/fuzz/guest-tests.list"
  fi
fi
if ((arm64)); then
  echo "== arm64 cross build in build-arm64"
  build "$top/build-arm64" -DCMAKE_TOOLCHAIN_FILE="$top/cmake/aarch64-linux-gnu.cmake"
  file -L "$top/build-arm64/modules/kcapi-aio.so" | grep -q 'ARM aarch64' ||
    { echo "build-arm64/modules/kcapi-aio.so is not an arm64 object" >&2; exit 1; }
  ((lab)) && suite "$top/build-arm64" kernel-lab
fi
if ((deb)); then
  echo "== Debian packages"
  if ((arm64)); then
    bash "$top/scripts/deb-check.sh" --arm64-tree "$top/build-arm64"
  else
    bash "$top/scripts/deb-check.sh" --no-arm64
  fi
fi
echo "all tests passed"
