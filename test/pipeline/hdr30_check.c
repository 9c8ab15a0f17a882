/* Part of the module built against the system headers: refuses to build if they aren't 3.0. */
#include <openssl/opensslv.h>
#include <openssl/core_dispatch.h>

#if OPENSSL_VERSION_MAJOR != 3 || OPENSSL_VERSION_MINOR != 0
#error "kcapi-aio-hdr30 must be compiled against OpenSSL 3.0 headers"
#endif
#ifdef OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT
#error "3.0 headers do not declare the pipeline dispatch IDs"
#endif

typedef int ka_hdr30_check;
