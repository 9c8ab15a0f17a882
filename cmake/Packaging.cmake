# Debian package (.deb) through CPack: in a tree configured against the system OpenSSL,
#   cmake --build build --target package      (or: cd build && cpack -G DEB)
# makes build/kcapi-aio_VERSION_ARCH.deb. It holds the module (OpenSSL's module directory), the
# configuration file (a conffile in KCAPI_AIO_CNFDIR), the tools in /usr/bin and their manual pages.
if(KCAPI_AIO_OPENSSL_PREFIX)
  # Such a build is linked (with an rpath) to an OpenSSL outside the system: not a package.
  message(STATUS "package: not offered, the build uses the OpenSSL in ${KCAPI_AIO_OPENSSL_PREFIX}")
  return()
endif()

if(CMAKE_LIBRARY_ARCHITECTURE MATCHES "^aarch64")
  set(_deb_arch arm64)
elseif(CMAKE_LIBRARY_ARCHITECTURE MATCHES "^x86_64")
  set(_deb_arch amd64)
else()
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE _deb_arch
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()

# The OpenSSL series built against is the lowest the package runs with (libssl3t64 is the name
# of the same library from Debian 13 on).
string(REGEX MATCH "^[0-9]+\\.[0-9]+" _ossl_series "${LIBCRYPTO_VERSION}")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kcapi-aio)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "kcapi-aio <kcapi-aio@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "OpenSSL 3 provider: AES-CBC/CTR/GCM in the Linux kernel through AF_ALG, with AIO batches")
set(CPACK_PACKAGE_DESCRIPTION
    "kcapi-aio runs OpenSSL's AES-CBC, AES-CTR and AES-GCM ciphers in the Linux kernel's crypto
API through AF_ALG sockets, handing batches of independent records to the kernel in one AIO
submission, and falls back to synchronous AF_ALG or libcrypto's software implementation.
Its output equals OpenSSL's default provider byte for byte.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${_deb_arch})
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6 (>= 2.34), libssl3 (>= ${_ossl_series}) | libssl3t64 (>= ${_ossl_series}), libaio1 (>= 0.3.93) | libaio1t64")
set(CPACK_STRIP_FILES ON)
file(WRITE ${CMAKE_BINARY_DIR}/deb/conffiles "${KCAPI_AIO_CNFDIR}/kcapi-aio.cnf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# What the package holds, and nothing else (no tests): cmake --build DIR --target deb-files
set(_deb_targets kcapi-aio kcapi-aio-info man)
if(TARGET kcapi-aio-seal)
  list(APPEND _deb_targets kcapi-aio-seal)
endif()
add_custom_target(deb-files DEPENDS ${_deb_targets})
