/*
 * Generic cipher glue shared by the nine algorithms: the context header every
 * mode embeds, the argument checks, the parameter tables and the macro that
 * makes each algorithm's dispatch table. Mode rules live in mode_*.c.
 */
#ifndef KCAPI_AIO_CIPHER_H
#define KCAPI_AIO_CIPHER_H

#include <sys/types.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "backend.h"
#include "tls_cbc.h"

struct ka_pipes;

/* No buffer is this long: a larger length is a negative int gone through size_t. */
#define KA_MAX_LEN ((size_t)SSIZE_MAX)

/* The head of every cipher context. */
typedef struct ka_ctx {
    KA_PROV *prov;
    enum kaio_mode mode;
    size_t keylen;   /* fixed by the algorithm */
    int enc;
    int key_set;
    KA_KEY *key;
    int pipeline;             /* pipeline-initialised: the ordinary calls are refused */
    struct ka_pipes *pipes;   /* per-pipe state (pipeline.h), kept across inits */
} KA_CTX;

/* State shared by CBC and CTR (OpenSSL's "generic" block/stream ciphers). */
typedef struct ka_generic_ctx {
    KA_CTX base;
    unsigned char iv[KAIO_BLOCK];  /* chained IV (CBC) / next counter block (CTR) */
    unsigned char oiv[KAIO_BLOCK]; /* the IV as set */
    int iv_set;
    unsigned char buf[KAIO_BLOCK]; /* CBC: partial block; CTR: keystream of the partial block */
    size_t bufsz;
    unsigned int pad;
    unsigned int num;
    unsigned int tlsversion;
    size_t tlsmacsize;
    unsigned char tlsmac[KA_TLS_MAX_MAC];
} KA_GENERIC_CTX;

void ka_ctx_init(KA_CTX *c, KA_PROV *p, enum kaio_mode mode, size_t keylen);
/* Copies the head; the copy gets its own key handle. */
int ka_ctx_dup(KA_CTX *dst, const KA_CTX *src);
void ka_ctx_cleanup(KA_CTX *c);
/* Sets the key (checks its length against the algorithm's). */
int ka_ctx_setkey(KA_CTX *c, const unsigned char *key, size_t keylen);
/* Raises "no key set", saying why when the context was pipeline-initialised. */
void ka_raise_no_key(const KA_CTX *c);

/*
 * Checks one update's buffers: a key is set, in is not NULL when inl > 0,
 * out is not NULL when output is due, and in/out don't partially overlap
 * (out == in - lag is in place for a mode that buffered lag bytes).
 */
int ka_check_io(const KA_CTX *c, const unsigned char *out, const unsigned char *in, size_t inl,
                size_t lag);
/* ka_check_io for a call that outputs exactly inl bytes, with room for outsize. */
int ka_check_io_size(const KA_CTX *c, const unsigned char *out, size_t outsize,
                     const unsigned char *in, size_t inl);

/* Sets an octet parameter as the caller typed it (OCTET_PTR or OCTET_STRING). Trying one
 * setter and then the other leaves an error on the queue from OpenSSL 3.6 on. */
int ka_param_set_octets(OSSL_PARAM *p, const void *val, size_t len);

/* Cipher (algorithm) params: mode, keylen, ivlen, blocksize, aead, custom-iv, ... */
int ka_cipher_get_params(OSSL_PARAM params[], unsigned int evp_mode, int aead,
                         size_t keylen, size_t blocksize, size_t ivlen);
const OSSL_PARAM *ka_cipher_gettable_params(void *provctx);

/* CBC and CTR: OpenSSL's generic init, params and context lifecycle. */
int ka_generic_init(KA_GENERIC_CTX *g, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[], int enc);
int ka_generic_einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[]);
int ka_generic_dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[]);
int ka_generic_get_ctx_params(void *vctx, OSSL_PARAM params[]);
int ka_generic_set_ctx_params(void *vctx, const OSSL_PARAM params[]);
const OSSL_PARAM *ka_generic_gettable_ctx_params(void *cctx, void *provctx);
const OSSL_PARAM *ka_generic_settable_ctx_params(void *cctx, void *provctx);
void *ka_generic_newctx(void *provctx, enum kaio_mode mode, size_t keylen);
void *ka_generic_dupctx(void *vctx);
void ka_generic_freectx(void *vctx);

/*
 * GCM's TLS 1.2 fixed IV (mode_gcm.c): at least 4 bytes, leaving room in an
 * IV of ivlen bytes for the 8-byte explicit part of each record.
 */
int ka_gcm_tls_fixed_ok(size_t len, size_t ivlen);

/* 128-bit big-endian counter addition (CTR, as OpenSSL and the kernel count). */
void ka_ctr_add(unsigned char ctr[KAIO_BLOCK], uint64_t blocks);

/* One dispatch table per algorithm: newctx and get_params know the key size. */
#define KA_CIPHER_DISPATCH(name, newfn, getfn, ...)                                       \
    const OSSL_DISPATCH name[] = {                                                      \
        { OSSL_FUNC_CIPHER_NEWCTX, (void (*)(void))newfn },                             \
        { OSSL_FUNC_CIPHER_GET_PARAMS, (void (*)(void))getfn },                         \
        { OSSL_FUNC_CIPHER_GETTABLE_PARAMS, (void (*)(void))ka_cipher_gettable_params }, \
        __VA_ARGS__,                                                                    \
        { 0, NULL }                                                                     \
    }

/*
 * A CBC or CTR algorithm of one key size: OpenSSL's generic context and
 * params, with the mode's update, final, cipher and pipeline functions
 * (lc##_update, lc##_final, lc##_cipher, lc##_pipe_update, lc##_pipe_final).
 */
#define KA_GENERIC_ALG(lc, MODE, evp_mode, blocksize, bits)                                   \
    static void *lc##bits##_newctx(void *provctx)                                            \
    {                                                                                         \
        return ka_generic_newctx(provctx, MODE, bits / 8);                                    \
    }                                                                                         \
    static int lc##bits##_get_params(OSSL_PARAM params[])                                    \
    {                                                                                         \
        return ka_cipher_get_params(params, evp_mode, 0, bits / 8, blocksize, KAIO_BLOCK);    \
    }                                                                                         \
    KA_CIPHER_DISPATCH(ka_aes##bits##lc##_functions, lc##bits##_newctx, lc##bits##_get_params, \
        { OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))ka_generic_freectx },                    \
        { OSSL_FUNC_CIPHER_DUPCTX, (void (*)(void))ka_generic_dupctx },                      \
        { OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))ka_generic_einit },                 \
        { OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))ka_generic_dinit },                 \
        { OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))lc##_update },                            \
        { OSSL_FUNC_CIPHER_FINAL, (void (*)(void))lc##_final },                              \
        { OSSL_FUNC_CIPHER_CIPHER, (void (*)(void))lc##_cipher },                            \
        { OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT, (void (*)(void))ka_generic_pipe_einit },   \
        { OSSL_FUNC_CIPHER_PIPELINE_DECRYPT_INIT, (void (*)(void))ka_generic_pipe_dinit },   \
        { OSSL_FUNC_CIPHER_PIPELINE_UPDATE, (void (*)(void))lc##_pipe_update },              \
        { OSSL_FUNC_CIPHER_PIPELINE_FINAL, (void (*)(void))lc##_pipe_final },                \
        { OSSL_FUNC_CIPHER_GET_CTX_PARAMS, (void (*)(void))ka_generic_get_ctx_params },      \
        { OSSL_FUNC_CIPHER_SET_CTX_PARAMS, (void (*)(void))ka_generic_set_ctx_params },      \
        { OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))ka_generic_gettable_ctx_params }, \
        { OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))ka_generic_settable_ctx_params })

/* The algorithm dispatch tables (mode_*.c), indexed by key size in prov.c. */
extern const OSSL_DISPATCH ka_aes128cbc_functions[], ka_aes192cbc_functions[], ka_aes256cbc_functions[];
extern const OSSL_DISPATCH ka_aes128ctr_functions[], ka_aes192ctr_functions[], ka_aes256ctr_functions[];
extern const OSSL_DISPATCH ka_aes128gcm_functions[], ka_aes192gcm_functions[], ka_aes256gcm_functions[];

#endif
