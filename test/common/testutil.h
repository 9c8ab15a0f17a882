/* Helpers shared by the test programs. */
#ifndef KCAPI_AIO_TESTUTIL_H
#define KCAPI_AIO_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <check.h>

/* The nine ciphers, by OpenSSL's canonical names. */
extern const char *const tu_ciphers[9];

/* A library context with only kcapi-aio loaded (from the build tree, or
 * $KCAPI_AIO_MODULE_DIR). Created once, freed at exit. */
OSSL_LIB_CTX *tu_ours(void);
/* A library context with only OpenSSL's default provider. */
OSSL_LIB_CTX *tu_ref(void);
/* The same two for programs that are not Check suites: NULL (with the reason
 * on stderr) instead of a failed assertion. */
OSSL_LIB_CTX *tu_load_ours(void);
OSSL_LIB_CTX *tu_load_ref(void);
/* Fetch a cipher; fails the test when it is missing. */
EVP_CIPHER *tu_fetch(OSSL_LIB_CTX *lc, const char *name);
/* Directory holding kcapi-aio.so (and the test programs). */
const char *tu_module_dir(void);

/* One kcapi-aio counter ("ops_software", "fallback[AIO unavailable]", ...)
 * read from the provider's "kcapi-aio-counters" param; 0 if absent. */
uint64_t tu_counter(const char *name);
/* The same outside Check: 1 and *v, or 0 when the provider cannot tell. */
int tu_counter_read(const char *name, uint64_t *v);

/* Reproducible randomness: seeded from $TU_SEED (printed once) or the clock. */
uint64_t tu_seed(void);
uint32_t tu_rand32(void);
size_t tu_rand_below(size_t n);        /* uniform in [0, n) */
void tu_rand_bytes(void *buf, size_t n);

/* The error queue as one line (and cleared), for messages and checks. */
const char *tu_errors(void);
/* Print the first differing offset of two buffers to stderr; 1 if equal. */
int tu_same(const char *what, const unsigned char *a, size_t alen,
            const unsigned char *b, size_t blen);

/* Loopback TCP (in the kernel lab, the guest brings lo up): a socket listening
 * on 127.0.0.1 (its port in *port), a client connected to that port (the
 * server end waits in the listener's backlog), and the bytes waiting to be
 * read on a socket (FIONREAD). All -1 on failure. */
int tu_tcp_listen(int *port);
int tu_tcp_connect(int port);
int tu_bytes_waiting(int fd);

#endif
