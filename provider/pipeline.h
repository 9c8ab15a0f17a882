/*
 * The cipher pipeline interface (OpenSSL 3.5's EVP_CipherPipeline*): the
 * generic plumbing every mode shares. Argument checks, the per-pipe state,
 * the "pipeline-tag" param and the dispatch IDs live here; each mode's
 * per-pipe rules sit next to its single-record rules in mode_*.c.
 *
 * A pipeline call of n pipes is one batch: every mode answers an update or
 * a final with at most one ka_run() of at most n ops.
 */
#ifndef KCAPI_AIO_PIPELINE_H
#define KCAPI_AIO_PIPELINE_H

#include "cipher.h"

/*
 * OpenSSL 3.0 headers lack these. Declaring them here lets one module built
 * against 3.0 export the pipeline functions: 3.0-3.4 ignore unknown IDs,
 * 3.5 uses them.
 */
#ifndef OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT
#define OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT 15
#define OSSL_FUNC_CIPHER_PIPELINE_DECRYPT_INIT 16
#define OSSL_FUNC_CIPHER_PIPELINE_UPDATE 17
#define OSSL_FUNC_CIPHER_PIPELINE_FINAL 18
#endif
#ifndef OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG
#define OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG "pipeline-tag"
#endif

#define KA_MAX_PIPES KAIO_MAX_BATCH /* == EVP_MAX_PIPES: one batch holds every pipe */
#define KA_PIPE_IV_MAX 128          /* GCM's longest IV */
#define KA_PIPE_TAG 16

/* One pipe's state; each mode uses its own fields. */
typedef struct ka_pipe {
    unsigned char iv[KA_PIPE_IV_MAX]; /* CBC: chained IV; CTR: counter of the current block; GCM: nonce */
    unsigned char buf[KAIO_BLOCK];    /* CBC: buffered input */
    size_t bufsz;
    unsigned int num;                 /* CTR: bytes of the current block used */
    /* GCM */
    unsigned char *aad;               /* buffered AAD, sent with the data in one op */
    size_t aadlen, aadcap;
    unsigned char *saved;             /* the one op's input, replayed if the message continues */
    size_t savedlen, savedcap;
    SW_GCM *stream;                   /* software stream, for patterns one op can't express */
    unsigned char tag[KA_PIPE_TAG];
    size_t taglen;                    /* 0: no tag yet */
    int data_seen;
    int one_op;                       /* the data went through one op that succeeded */
    int withheld;                     /* failed verification: plaintext never released */
} KA_PIPE;

typedef struct ka_pipes {
    size_t n;
    size_t ivlen;
    int enc;
    int finished;                     /* final ran: only the tags may be read */
    KA_PIPE pipe[KA_MAX_PIPES];
} KA_PIPES;

/*
 * Pipeline init: checks numpipes, the IV array and ivlen (ivmin..ivmax), sets
 * the key (NULL keeps the previous one) and starts every pipe afresh. The
 * context then refuses the ordinary update/final until a plain init.
 */
int ka_pipe_init(KA_CTX *c, const unsigned char *key, size_t keylen, size_t numpipes,
                 const unsigned char **iv, size_t ivlen, size_t ivmin, size_t ivmax, int enc);

/*
 * Checks a pipeline update's arguments against the init; NULL (error raised)
 * when they are unusable. out == NULL (AAD) is accepted only when aad_ok.
 * lag(ps, i), if not NULL, is how far pipe i's output may trail its input in
 * one buffer (bytes it holds back), as in-place streaming does.
 */
KA_PIPES *ka_pipe_check_update(KA_CTX *c, size_t numpipes, unsigned char **out, size_t *outl,
                               const size_t *outsize, const unsigned char **in, const size_t *inl,
                               int aad_ok, size_t (*lag)(const KA_PIPES *ps, size_t i));
KA_PIPES *ka_pipe_check_final(KA_CTX *c, size_t numpipes, unsigned char **out, size_t *outl,
                              const size_t *outsize);

/* "pipeline-tag": the caller's array of numpipes tag pointers and one tag's length (1..16). */
int ka_pipe_tag_param(const KA_CTX *c, const OSSL_PARAM *p, unsigned char ***tags, size_t *taglen);

/* Scratch for inputs that must be rearranged before a batch (freed with clear_free). */
unsigned char *ka_pipe_scratch(const KA_CTX *c, size_t len);

/* Context lifecycle (ka_ctx_dup, ka_ctx_cleanup). */
KA_PIPES *ka_pipes_dup(const KA_PIPES *p);
void ka_pipes_free(KA_PIPES *p);

/* CBC and CTR share the generic context: one init pair for both. */
int ka_generic_pipe_einit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[]);
int ka_generic_pipe_dinit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[]);

#endif
