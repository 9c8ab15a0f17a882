/* The provider context, configuration and error reporting shared by all provider files. */
#ifndef KCAPI_AIO_PROV_H
#define KCAPI_AIO_PROV_H

#include <stdarg.h>
#include <stddef.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "kcapi-aio/engine.h"

/* Configured backend choice (config key "backend", env KCAPI_AIO_BACKEND). */
enum ka_backend { KA_BACKEND_AUTO = 0, KA_BACKEND_AIO, KA_BACKEND_SYNC, KA_BACKEND_SOFTWARE };

struct ka_fwd;

typedef struct ka_prov {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *sw_libctx;           /* private: libcrypto's default provider */
    OSSL_PROVIDER *sw_default;
    EVP_CIPHER *sw_cipher[KAIO_NMODES][3]; /* fetched once: [mode][128/192/256] */
    enum ka_backend backend;
    unsigned int aio_min_batch;        /* AIO from this many ops in a batch */
    unsigned int fd_budget;
    size_t kernel_min_bytes;           /* smaller records go to software */
    int cpu_drivers_kernel;            /* auto sends modes on CPU drivers to the kernel too */
    int async_batch;                   /* ASYNC jobs' reads share an io_submit (engine setting) */
    struct ka_fwd *fwd;                /* forwarding tables of the software modes (forward.c) */
} KA_PROV;

/* Reason codes on OpenSSL's error queue (strings in prov.c). */
enum ka_reason {
    KA_R_INVALID_KEY_LENGTH = 1,
    KA_R_INVALID_IV_LENGTH,
    KA_R_INVALID_TAG,
    KA_R_INVALID_TAG_LENGTH,
    KA_R_NO_KEY_SET,
    KA_R_NO_IV_SET,
    KA_R_OUTPUT_BUFFER_TOO_SMALL,
    KA_R_NULL_BUFFER,
    KA_R_OVERLAP,
    KA_R_WRONG_FINAL_BLOCK_LENGTH,
    KA_R_BAD_DECRYPT,
    KA_R_TAG_MISMATCH,
    KA_R_OPERATION_FAILED,
    KA_R_FINISHED,
    KA_R_FAILED_TO_GET_PARAMETER,
    KA_R_FAILED_TO_SET_PARAMETER,
    KA_R_INVALID_AAD,
    KA_R_AAD_AFTER_DATA,
    KA_R_BACKEND,
    KA_R_INVALID_CONFIG,
    KA_R_TOO_MANY_RECORDS,
    KA_R_DATA_TOO_LONG,
    KA_R_TLS_RECORD,
    KA_R_MALLOC,
    KA_R_PIPELINE,
    KA_R_NOT_INITIALISED,
    KA_R_NUMPIPES,
    KA_R_PIPELINE_MIXED,
    KA_R_MAX
};

/* Puts a reason (and optional detail) on OpenSSL's error queue. */
void ka_raise_at(const KA_PROV *p, int reason, const char *file, int line, const char *func,
                 const char *fmt, ...);
#define ka_raise(p, reason, ...) ka_raise_at((p), (reason), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Index 0/1/2 for 128/192/256-bit keys; -1 otherwise. */
int ka_keyidx(size_t keylen);

/* Random bytes from the private library context's DRBG. */
int ka_rand(const KA_PROV *p, unsigned char *buf, size_t n);

/* The human-readable report behind the provider params (report.c). */
size_t ka_report(const KA_PROV *p, char *buf, size_t size, int counters_only);

#endif
