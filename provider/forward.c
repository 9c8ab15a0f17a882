/*
 * Software keys forward: an algorithm whose mode runs in software
 * (ka_backend_choice says KAIO_PATH_SOFTWARE) gets a dispatch table whose
 * context holds ONE context of the default provider (in the private library
 * context) for its whole life, and passes every call straight to the default
 * provider's own dispatch function. So every usage pattern (TLS params, tags,
 * IV generation, dup, re-init) behaves exactly as the default provider, at
 * its speed: no op arrays, no per-record re-initialisation, no copies.
 *
 * In front of the calls sit only kcapi-aio's cheap argument checks (negative
 * lengths, NULL buffers, partially overlapping buffers, a CTR num other than
 * 0), which the default provider would not refuse cleanly.
 *
 * Pipelines (OpenSSL 3.5) go to an ordinary kcapi-aio context of the same
 * algorithm, made at the first pipeline init: its keys run in software too.
 *
 * Mode-agnostic: which function of which table is all this file knows.
 */
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "forward.h"
#include "pipeline.h"

typedef int pipe_init_fn(void *, const unsigned char *, size_t, size_t, const unsigned char **,
                         size_t, const OSSL_PARAM[]);
typedef int pipe_update_fn(void *, size_t, unsigned char **, size_t *, const size_t *,
                           const unsigned char **, const size_t *);
typedef int pipe_final_fn(void *, size_t, unsigned char **, size_t *, const size_t *);

/* The functions of one algorithm's dispatch table that a forwarding context calls. */
struct fns {
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_dupctx_fn *dupctx;
    OSSL_FUNC_cipher_encrypt_init_fn *einit;
    OSSL_FUNC_cipher_decrypt_init_fn *dinit;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_cipher_fn *cipher;
    OSSL_FUNC_cipher_get_ctx_params_fn *get_ctx_params;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
    pipe_init_fn *pipe_einit, *pipe_dinit;
    pipe_update_fn *pipe_update;
    pipe_final_fn *pipe_final;
};

#define KA_FWD_MAXALGS 12
#define KA_FWD_MAXFNS 32

typedef struct fwd_alg {
    KA_PROV *prov;
    enum kaio_mode mode;
    enum kaio_reason why;     /* why this mode runs in software (counted per operation) */
    void *dprovctx;           /* the default provider's provctx */
    struct fns def;           /* the default provider's functions */
    struct fns ka;            /* kcapi-aio's own (pipelines) */
    OSSL_DISPATCH table[KA_FWD_MAXFNS];
} FWD_ALG;

struct ka_fwd {
    pthread_mutex_t lock;
    int ready;
    const OSSL_ALGORITHM *def_algs; /* the default provider's answer, given back at teardown */
    OSSL_ALGORITHM algs[KA_FWD_MAXALGS + 1];
    FWD_ALG alg[KA_FWD_MAXALGS];
};

typedef struct fwd_ctx {
    void *inner;       /* the default provider's context */
    OSSL_FUNC_cipher_update_fn *def_update, *def_cipher;
    int slow;          /* TLS records or a pipeline: every call looked at before and after */
    int cbc, gcm;
    unsigned int fb;   /* the counter slot of the reason this mode runs in software */
    int enc;
    size_t lag;        /* CBC: bytes the inner context holds back (in place may trail by this) */
    int pad;           /* CBC padding on (OpenSSL's default), as the inner context has it */
    int tls;           /* a TLS record mode is set (CBC tls-version, GCM tlsaad) */
    int in_pipe;       /* pipeline-initialised: everything goes to kctx */
    int counted;       /* GCM: this message's operation is counted */
    int gcm_msg;       /* GCM: AAD or data given since the IV was set */
    int gcm_no_iv;     /* GCM: re-keyed mid-message without an IV: no data until one comes */
    unsigned char key[32]; /* the key as last set: a CBC context turned around needs it again */
    size_t keylen;
    const FWD_ALG *a;
    void *kctx;        /* kcapi-aio's own context, for pipelines (lazily made) */
    struct kaio_count_block cnt; /* this context's counts: no shared cache line per record */
} FWD_CTX;

static void set_slow(FWD_CTX *c)
{
    c->slow = c->in_pipe || c->tls;
}

static void get_fns(const OSSL_DISPATCH *d, struct fns *f)
{
    memset(f, 0, sizeof(*f));
    for (; d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX: f->newctx = OSSL_FUNC_cipher_newctx(d); break;
        case OSSL_FUNC_CIPHER_FREECTX: f->freectx = OSSL_FUNC_cipher_freectx(d); break;
        case OSSL_FUNC_CIPHER_DUPCTX: f->dupctx = OSSL_FUNC_cipher_dupctx(d); break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT: f->einit = OSSL_FUNC_cipher_encrypt_init(d); break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT: f->dinit = OSSL_FUNC_cipher_decrypt_init(d); break;
        case OSSL_FUNC_CIPHER_UPDATE: f->update = OSSL_FUNC_cipher_update(d); break;
        case OSSL_FUNC_CIPHER_FINAL: f->final = OSSL_FUNC_cipher_final(d); break;
        case OSSL_FUNC_CIPHER_CIPHER: f->cipher = OSSL_FUNC_cipher_cipher(d); break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: f->get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(d); break;
        case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: f->set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(d); break;
        case OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT: f->pipe_einit = (pipe_init_fn *)d->function; break;
        case OSSL_FUNC_CIPHER_PIPELINE_DECRYPT_INIT: f->pipe_dinit = (pipe_init_fn *)d->function; break;
        case OSSL_FUNC_CIPHER_PIPELINE_UPDATE: f->pipe_update = (pipe_update_fn *)d->function; break;
        case OSSL_FUNC_CIPHER_PIPELINE_FINAL: f->pipe_final = (pipe_final_fn *)d->function; break;
        default: break;
        }
    }
}

/* ---- the cheap checks kcapi-aio keeps in front ---- */

/* Inlined: it runs on every record. */
static inline __attribute__((always_inline)) int check_io(const FWD_CTX *c, const unsigned char *out,
                                                          const unsigned char *in, size_t inl)
{
    if (inl == 0)
        return 1;
    if (__builtin_expect(inl > KA_MAX_LEN, 0)) {
        ka_raise(c->a->prov, KA_R_DATA_TOO_LONG, "%zu bytes (a negative length?)", inl);
        return 0;
    }
    /* GCM: out == NULL is AAD and in == NULL is final (OpenSSL's convention). */
    if (c->a->mode != KAIO_GCM && (in == NULL || out == NULL)) {
        ka_raise(c->a->prov, KA_R_NULL_BUFFER, "%s buffer is NULL", in == NULL ? "input" : "output");
        return 0;
    }
    /* In place counts from the held-back bytes on: out may trail in by exactly lag. */
    if (in != NULL && out != NULL && out + c->lag != in && (uintptr_t)out < (uintptr_t)in + inl
        && (uintptr_t)in < (uintptr_t)out + inl + c->lag) {
        ka_raise(c->a->prov, KA_R_OVERLAP, "input and output overlap without being the same buffer");
        return 0;
    }
    return 1;
}

/* The IV length the inner GCM context has now (set by the caller, 12 by default). */
static size_t gcm_ivlen(const FWD_CTX *c)
{
    size_t ivlen = 0;
    OSSL_PARAM q[2] = { OSSL_PARAM_END, OSSL_PARAM_END };

    q[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_IVLEN, &ivlen);
    return c->a->def.get_ctx_params(c->inner, q) ? ivlen : 0;
}

/*
 * Parameters the default provider takes but should not (kcapi-aio's own
 * contexts refuse them too): a TLS MAC larger than any digest's, a tag set
 * on an encrypting GCM context (OpenSSL 3.0 overwrites the computed tag
 * before refusing it), a TLS fixed IV that leaves no room for the explicit
 * part (the default provider's length check wraps around).
 */
static int check_tls_param(const FWD_CTX *c, const OSSL_PARAM *p)
{
    size_t sz;

    if (strcmp(p->key, OSSL_CIPHER_PARAM_TLS_MAC_SIZE) == 0 && !c->gcm
        && (!OSSL_PARAM_get_size_t(p, &sz) || sz > KA_TLS_MAX_MAC)) {
        ka_raise(c->a->prov, KA_R_FAILED_TO_GET_PARAMETER, "%s (at most %d)", p->key, KA_TLS_MAX_MAC);
        return 0;
    }
    if (c->gcm && strcmp(p->key, OSSL_CIPHER_PARAM_AEAD_TAG) == 0 && c->enc) {
        ka_raise(c->a->prov, KA_R_INVALID_TAG, "the tag is set only to decrypt");
        return 0;
    }
    if (c->gcm && strcmp(p->key, OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED) == 0
        && p->data_size != (size_t)-1 && !ka_gcm_tls_fixed_ok(p->data_size, gcm_ivlen(c))) {
        ka_raise(c->a->prov, KA_R_INVALID_IV_LENGTH, "%s of %zu bytes", p->key, p->data_size);
        return 0;
    }
    return 1;
}

/*
 * A CTR num other than 0 is refused, as OpenSSL 3.5 does (3.0 reads a stale
 * keystream); the TLS record mode and padding are noted. One pass, a strcmp
 * only where the first letter matches: set_ctx_params runs on every record
 * of some callers.
 */
static int check_params(FWD_CTX *c, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    unsigned int u;

    if (params == NULL)
        return 1;
    for (p = params; p->key != NULL; p++) {
        switch (p->key[0]) {
        case 'n':
            if (c->a->mode == KAIO_CTR && strcmp(p->key, OSSL_CIPHER_PARAM_NUM) == 0
                && (!OSSL_PARAM_get_uint(p, &u) || u != 0)) {
                ka_raise(c->a->prov, KA_R_FAILED_TO_GET_PARAMETER, "%s", p->key);
                return 0;
            }
            break;
        case 't':
            if (!check_tls_param(c, p))
                return 0;
            if (strcmp(p->key, OSSL_CIPHER_PARAM_TLS_VERSION) == 0 && OSSL_PARAM_get_uint(p, &u)) {
                c->tls = u != 0;
                c->lag = 0;
            } else if (strcmp(p->key, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD) == 0) {
                c->tls = 1; /* one record per update from now on */
                c->counted = 0;
            }
            break;
        case 'p':
            if (strcmp(p->key, OSSL_CIPHER_PARAM_PADDING) == 0 && OSSL_PARAM_get_uint(p, &u))
                c->pad = u != 0;
            break;
        default:
            break;
        }
    }
    set_slow(c);
    return 1;
}

/*
 * The default provider fails some calls (a GCM tag mismatch, ...) without a
 * word on the error queue; kcapi-aio always says why. Costs nothing when the
 * call succeeds.
 */
static int failed(const FWD_CTX *c, const char *what)
{
    if (c->a->mode == KAIO_GCM && !c->enc && strcmp(what, "final") == 0)
        ka_raise(c->a->prov, KA_R_TAG_MISMATCH, NULL);
    else if (c->a->mode == KAIO_CBC && !c->enc && strcmp(what, "final") == 0)
        ka_raise(c->a->prov, KA_R_BAD_DECRYPT, NULL);
    else
        ka_raise(c->a->prov, KA_R_OPERATION_FAILED, "%s %s %s refused by the software implementation",
                 kaio_mode_name(c->a->mode), c->enc ? "encryption" : "decryption", what);
    return 0;
}

/* ---- context lifecycle ---- */

static void *fwd_newctx(KA_PROV *p, size_t i)
{
    const FWD_ALG *a = &p->fwd->alg[i];
    FWD_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL) {
        ka_raise(p, KA_R_MALLOC, NULL);
        return NULL;
    }
    c->a = a;
    c->def_update = a->def.update;
    c->def_cipher = a->def.cipher;
    c->cbc = a->mode == KAIO_CBC;
    c->gcm = a->mode == KAIO_GCM;
    c->fb = KAIO_COUNT_FALLBACK(a->why);
    c->pad = 1;
    set_slow(c);
    if ((c->inner = a->def.newctx(a->dprovctx)) == NULL) {
        ka_raise(p, KA_R_BACKEND, "software %s context", kaio_mode_name(a->mode));
        OPENSSL_free(c);
        return NULL;
    }
    kaio_block_attach(&c->cnt);
    return c;
}

/* One newctx per algorithm slot: newctx is told only the provider context. */
#define FWD_NEWCTX(i) \
    static void *fwd_newctx_##i(void *provctx) { return fwd_newctx(provctx, i); }
FWD_NEWCTX(0) FWD_NEWCTX(1) FWD_NEWCTX(2) FWD_NEWCTX(3) FWD_NEWCTX(4) FWD_NEWCTX(5)
FWD_NEWCTX(6) FWD_NEWCTX(7) FWD_NEWCTX(8) FWD_NEWCTX(9) FWD_NEWCTX(10) FWD_NEWCTX(11)
static OSSL_FUNC_cipher_newctx_fn *const newctx_slot[KA_FWD_MAXALGS] = {
    fwd_newctx_0, fwd_newctx_1, fwd_newctx_2, fwd_newctx_3, fwd_newctx_4, fwd_newctx_5,
    fwd_newctx_6, fwd_newctx_7, fwd_newctx_8, fwd_newctx_9, fwd_newctx_10, fwd_newctx_11,
};

static void fwd_freectx(void *vctx)
{
    FWD_CTX *c = vctx;

    if (c == NULL)
        return;
    kaio_block_detach(&c->cnt);
    c->a->def.freectx(c->inner);
    if (c->kctx != NULL)
        c->a->ka.freectx(c->kctx);
    OPENSSL_clear_free(c, sizeof(*c));
}

static void *fwd_dupctx(void *vctx)
{
    FWD_CTX *src = vctx, *d = OPENSSL_malloc(sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *src;
    d->kctx = NULL;
    if ((d->inner = src->a->def.dupctx(src->inner)) == NULL
        || (src->kctx != NULL && (d->kctx = src->a->ka.dupctx(src->kctx)) == NULL)) {
        if (d->inner != NULL)
            src->a->def.freectx(d->inner);
        OPENSSL_clear_free(d, sizeof(*d));
        return NULL;
    }
    kaio_block_attach(&d->cnt);
    return d;
}

static int fwd_init(FWD_CTX *c, int enc, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[])
{
    int turned = enc != c->enc;

    c->in_pipe = 0;
    c->enc = enc;
    c->counted = 0;
    c->lag = 0;
    set_slow(c);
    if (!check_params(c, params))
        return 0;
    if (key != NULL && keylen <= sizeof(c->key)) {
        memcpy(c->key, key, keylen);
        c->keylen = keylen;
    } else if (key == NULL && turned && c->cbc && c->keylen > 0) {
        /* The default provider keeps the other direction's key schedule: give the key again. */
        key = c->key;
        keylen = c->keylen;
    }
    if (c->gcm) {
        if (iv != NULL)
            c->gcm_msg = c->gcm_no_iv = 0;
        else if (key != NULL && c->gcm_msg)
            c->gcm_no_iv = 1; /* the default provider would go on from an all-zero counter */
    }
    if (!(enc ? c->a->def.einit(c->inner, key, keylen, iv, ivlen, params)
              : c->a->def.dinit(c->inner, key, keylen, iv, ivlen, params)))
        return failed(c, "init");
    return 1;
}

static int fwd_einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return fwd_init(vctx, 1, key, keylen, iv, ivlen, params);
}

static int fwd_dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return fwd_init(vctx, 0, key, keylen, iv, ivlen, params);
}

/* ---- the data calls ---- */

/* One operation of bytes bytes, run in software (as every operation of this context is). */
static inline __attribute__((always_inline)) void count_op(FWD_CTX *c, size_t bytes)
{
    kaio_block_add(&c->cnt, KAIO_C_OPS_SOFTWARE, 1);
    kaio_block_add(&c->cnt, KAIO_C_BATCHES_SOFTWARE, 1);
    kaio_block_add(&c->cnt, KAIO_C_BYTES_SOFTWARE, bytes);
    kaio_block_add(&c->cnt, c->fb, 1);
}

/* Counts what one data call did: one operation per call that produced output (GCM: per message). */
static void count_data(FWD_CTX *c, int ok, const unsigned char *out, const unsigned char *in,
                       size_t inl, size_t outl)
{
    if (c->a->mode == KAIO_GCM) {
        if (in == NULL || out == NULL || inl == 0)
            return; /* AAD, or final through update: counted at the final */
        if (!c->counted || c->tls) {
            c->counted = 1;
            count_op(c, ok ? outl : 0);
        } else if (ok) {
            kaio_block_add(&c->cnt, KAIO_C_BYTES_SOFTWARE, outl);
        }
        if (!ok && !c->enc && c->tls)
            kaio_block_add(&c->cnt, KAIO_C_TAG_FAILURES, 1);
        return;
    }
    if (!ok)
        return;
    if (outl > 0 || (c->tls && inl > 0)) /* a TLS record may be all padding and MAC */
        count_op(c, outl);
    /* Whatever the inner context did not answer it holds back (CBC). */
    if (!c->tls && inl >= outl)
        c->lag = c->lag + inl - outl < KAIO_BLOCK * 2 ? c->lag + inl - outl : 0;
}

/* TLS records, pipelines: every call looked at before and after. */
static int data_slow(FWD_CTX *c, int cipher, unsigned char *out, size_t *outl, size_t outsize,
                     const unsigned char *in, size_t inl)
{
    int ok;

    if (c->in_pipe)
        return (cipher ? c->a->ka.cipher : c->a->ka.update)(c->kctx, out, outl, outsize, in, inl);
    if (!check_io(c, out, in, inl))
        return 0;
    ok = (cipher ? c->def_cipher : c->def_update)(c->inner, out, outl, outsize, in, inl);
    count_data(c, ok, out, in, inl, ok ? *outl : 0);
    return ok ? 1 : failed(c, cipher ? "cipher" : "update");
}

/* The bytes a CBC stream holds back after inl more (EVP's rule: decryption with padding keeps a block). */
static inline size_t cbc_lag(const FWD_CTX *c, size_t inl)
{
    size_t t = c->lag + inl, r = t % KAIO_BLOCK;

    return !c->enc && c->pad && r == 0 && t > 0 ? KAIO_BLOCK : r;
}

/*
 * Every record outside TLS record mode: the checks and the count come first,
 * so the call itself is the last thing done (a tail call, nothing to save).
 * CBC/CTR count an operation per call with data, GCM one per message (its
 * first data), with the bytes handed over.
 */
static inline __attribute__((always_inline)) int plain_data(FWD_CTX *c, size_t inl,
                                                            const unsigned char *out,
                                                            const unsigned char *in)
{
    if (inl == 0)
        return 1;
    if (!check_io(c, out, in, inl))
        return 0;
    if (c->gcm) {
        if (__builtin_expect(c->gcm_no_iv, 0)) {
            ka_raise(c->a->prov, KA_R_NO_IV_SET, "a new key mid-message needs a new IV");
            return 0;
        }
        c->gcm_msg = 1;
        if (in == NULL || out == NULL)
            return 1; /* AAD, or the final through update */
        if (!c->counted) {
            c->counted = 1;
            count_op(c, inl);
        } else {
            kaio_block_add(&c->cnt, KAIO_C_BYTES_SOFTWARE, inl);
        }
        return 1;
    }
    count_op(c, inl);
    if (c->cbc)
        c->lag = cbc_lag(c, inl);
    return 1;
}

static int fwd_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    FWD_CTX *c = vctx;

    if (__builtin_expect(c->slow, 0))
        return data_slow(c, 0, out, outl, outsize, in, inl);
    if (!plain_data(c, inl, out, in))
        return 0;
    return c->def_update(c->inner, out, outl, outsize, in, inl);
}

static int fwd_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    FWD_CTX *c = vctx;

    if (__builtin_expect(c->slow, 0))
        return data_slow(c, 1, out, outl, outsize, in, inl);
    if (!plain_data(c, inl, out, in))
        return 0;
    return c->def_cipher(c->inner, out, outl, outsize, in, inl);
}

static int fwd_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    FWD_CTX *c = vctx;
    int ok;

    if (c->in_pipe)
        return c->a->ka.final(c->kctx, out, outl, outsize);
    ok = c->a->def.final(c->inner, out, outl, outsize);
    if (c->a->mode == KAIO_GCM) {
        if (!c->counted)
            count_op(c, 0);
        c->counted = 0;
        c->gcm_msg = 0;
        if (!ok && !c->enc)
            kaio_block_add(&c->cnt, KAIO_C_TAG_FAILURES, 1);
    } else if (ok && c->enc && *outl > 0) {
        count_op(c, *outl); /* the padding block (a decryption's input was counted at update) */
    }
    c->lag = 0;
    return ok ? 1 : failed(c, "final");
}

/* ---- params ---- */

static int fwd_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    FWD_CTX *c = vctx;

    if (c->in_pipe)
        return c->a->ka.get_ctx_params(c->kctx, params);
    if (!c->a->def.get_ctx_params(c->inner, params))
        return failed(c, "get_ctx_params");
    return 1;
}

static int fwd_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    FWD_CTX *c = vctx;

    if (c->in_pipe)
        return c->a->ka.set_ctx_params(c->kctx, params);
    if (!check_params(c, params))
        return 0;
    if (!c->a->def.set_ctx_params(c->inner, params))
        return failed(c, "set_ctx_params");
    return 1;
}

/* ---- pipelines: kcapi-aio's own batch code, on a context whose keys run in software ---- */

static int fwd_pipe_init(FWD_CTX *c, int enc, const unsigned char *key, size_t keylen,
                         size_t numpipes, const unsigned char **iv, size_t ivlen,
                         const OSSL_PARAM params[])
{
    const FWD_ALG *a = c->a;

    if (c->kctx == NULL && (c->kctx = a->ka.newctx(a->prov)) == NULL)
        return 0;
    /* The inner context gets the key too: a later plain init may give only an IV. */
    if (key != NULL && !(enc ? a->def.einit(c->inner, key, keylen, NULL, 0, NULL)
                             : a->def.dinit(c->inner, key, keylen, NULL, 0, NULL)))
        return 0;
    c->in_pipe = 1;
    c->enc = enc;
    set_slow(c);
    return (enc ? a->ka.pipe_einit : a->ka.pipe_dinit)(c->kctx, key, keylen, numpipes, iv, ivlen,
                                                        params);
}

static int fwd_pipe_einit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[])
{
    return fwd_pipe_init(vctx, 1, key, keylen, numpipes, iv, ivlen, params);
}

static int fwd_pipe_dinit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[])
{
    return fwd_pipe_init(vctx, 0, key, keylen, numpipes, iv, ivlen, params);
}

static int fwd_pipe_update(void *vctx, size_t n, unsigned char **out, size_t *outl,
                           const size_t *outsize, const unsigned char **in, const size_t *inl)
{
    FWD_CTX *c = vctx;

    if (c->kctx == NULL) {
        ka_raise(c->a->prov, KA_R_NOT_INITIALISED, "no pipeline init");
        return 0;
    }
    return c->a->ka.pipe_update(c->kctx, n, out, outl, outsize, in, inl);
}

static int fwd_pipe_final(void *vctx, size_t n, unsigned char **out, size_t *outl,
                          const size_t *outsize)
{
    FWD_CTX *c = vctx;

    if (c->kctx == NULL) {
        ka_raise(c->a->prov, KA_R_NOT_INITIALISED, "no pipeline init");
        return 0;
    }
    return c->a->ka.pipe_final(c->kctx, n, out, outl, outsize);
}

/* ---- building the tables ---- */

/* The function a forwarding table puts in place of kcapi-aio's, or NULL to keep kcapi-aio's. */
static void (*fwd_fn(int id, const struct fns *def))(void)
{
    switch (id) {
    case OSSL_FUNC_CIPHER_FREECTX: return (void (*)(void))fwd_freectx;
    case OSSL_FUNC_CIPHER_DUPCTX: return def->dupctx ? (void (*)(void))fwd_dupctx : NULL;
    case OSSL_FUNC_CIPHER_ENCRYPT_INIT: return (void (*)(void))fwd_einit;
    case OSSL_FUNC_CIPHER_DECRYPT_INIT: return (void (*)(void))fwd_dinit;
    case OSSL_FUNC_CIPHER_UPDATE: return (void (*)(void))fwd_update;
    case OSSL_FUNC_CIPHER_FINAL: return (void (*)(void))fwd_final;
    case OSSL_FUNC_CIPHER_CIPHER: return def->cipher ? (void (*)(void))fwd_cipher : NULL;
    case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: return (void (*)(void))fwd_get_ctx_params;
    case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: return (void (*)(void))fwd_set_ctx_params;
    case OSSL_FUNC_CIPHER_PIPELINE_ENCRYPT_INIT: return (void (*)(void))fwd_pipe_einit;
    case OSSL_FUNC_CIPHER_PIPELINE_DECRYPT_INIT: return (void (*)(void))fwd_pipe_dinit;
    case OSSL_FUNC_CIPHER_PIPELINE_UPDATE: return (void (*)(void))fwd_pipe_update;
    case OSSL_FUNC_CIPHER_PIPELINE_FINAL: return (void (*)(void))fwd_pipe_final;
    default: return NULL;
    }
}

static int name_in(const char *names, const char *want, size_t n)
{
    while (names != NULL && *names) {
        const char *end = strchr(names, ':');
        size_t l = end ? (size_t)(end - names) : strlen(names);

        if (l == n && strncasecmp(names, want, n) == 0)
            return 1;
        names = end ? end + 1 : NULL;
    }
    return 0;
}

static const OSSL_DISPATCH *default_impl(const OSSL_ALGORITHM *def, const char *names)
{
    size_t n = strcspn(names, ":");

    for (; def != NULL && def->algorithm_names != NULL; def++)
        if (name_in(def->algorithm_names, names, n))
            return def->implementation;
    return NULL;
}

/* The mode a kcapi-aio algorithm implements, asked of its own get_params. */
static int alg_mode(const OSSL_DISPATCH *d, enum kaio_mode *mode)
{
    unsigned int m = 0;
    OSSL_PARAM params[2] = { OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, &m), OSSL_PARAM_END };

    for (; d->function_id != 0; d++)
        if (d->function_id == OSSL_FUNC_CIPHER_GET_PARAMS && OSSL_FUNC_cipher_get_params(d)(params))
            break;
    switch (m) {
    case EVP_CIPH_CBC_MODE: *mode = KAIO_CBC; return 1;
    case EVP_CIPH_CTR_MODE: *mode = KAIO_CTR; return 1;
    case EVP_CIPH_GCM_MODE: *mode = KAIO_GCM; return 1;
    default: return 0;
    }
}

/* Makes alg[i] forward to the default provider's implementation; 0 keeps kcapi-aio's. */
static int make_forward(KA_PROV *p, size_t i, const OSSL_ALGORITHM *ours, const OSSL_DISPATCH *def,
                        enum kaio_mode mode, enum kaio_reason why)
{
    FWD_ALG *a = &p->fwd->alg[i];
    const OSSL_DISPATCH *d;
    size_t n = 0;

    a->prov = p;
    a->mode = mode;
    a->why = why;
    a->dprovctx = OSSL_PROVIDER_get0_provider_ctx(p->sw_default);
    get_fns(def, &a->def);
    get_fns(ours->implementation, &a->ka);
    if (a->def.newctx == NULL || a->def.freectx == NULL || a->def.einit == NULL
        || a->def.dinit == NULL || a->def.update == NULL || a->def.final == NULL
        || a->def.get_ctx_params == NULL || a->def.set_ctx_params == NULL)
        return 0;
    a->table[n].function_id = OSSL_FUNC_CIPHER_NEWCTX;
    a->table[n++].function = (void (*)(void))newctx_slot[i];
    for (d = ours->implementation; d->function_id != 0 && n + 1 < KA_FWD_MAXFNS; d++) {
        void (*f)(void) = fwd_fn(d->function_id, &a->def);

        if (d->function_id == OSSL_FUNC_CIPHER_NEWCTX)
            continue;
        if (f == NULL && (d->function_id == OSSL_FUNC_CIPHER_DUPCTX
                          || d->function_id == OSSL_FUNC_CIPHER_CIPHER))
            continue; /* the default provider has none: neither does the forwarding table */
        a->table[n].function_id = d->function_id;
        a->table[n++].function = f != NULL ? f : d->function;
    }
    a->table[n].function_id = 0;
    a->table[n].function = NULL;
    return 1;
}

int ka_fwd_new(KA_PROV *p)
{
    if ((p->fwd = OPENSSL_zalloc(sizeof(*p->fwd))) == NULL)
        return 0;
    if (pthread_mutex_init(&p->fwd->lock, NULL) != 0) {
        OPENSSL_free(p->fwd);
        p->fwd = NULL;
        return 0;
    }
    return 1;
}

void ka_fwd_free(KA_PROV *p)
{
    if (p->fwd == NULL)
        return;
    if (p->fwd->def_algs != NULL)
        OSSL_PROVIDER_unquery_operation(p->sw_default, OSSL_OP_CIPHER, p->fwd->def_algs);
    pthread_mutex_destroy(&p->fwd->lock);
    OPENSSL_clear_free(p->fwd, sizeof(*p->fwd));
    p->fwd = NULL;
}

const OSSL_ALGORITHM *ka_fwd_algorithms(KA_PROV *p, const OSSL_ALGORITHM *ours)
{
    struct ka_fwd *f = p->fwd;
    size_t i;

    pthread_mutex_lock(&f->lock);
    if (!f->ready) {
        int no_cache = 0;

        f->def_algs = OSSL_PROVIDER_query_operation(p->sw_default, OSSL_OP_CIPHER, &no_cache);
        for (i = 0; ours[i].algorithm_names != NULL && i < KA_FWD_MAXALGS; i++) {
            const OSSL_DISPATCH *def = default_impl(f->def_algs, ours[i].algorithm_names);
            enum kaio_mode mode;
            enum kaio_reason why;

            f->algs[i] = ours[i];
            if (def != NULL && alg_mode(ours[i].implementation, &mode)
                && ka_backend_choice(p, mode, &why) == KAIO_PATH_SOFTWARE
                && make_forward(p, i, &ours[i], def, mode, why))
                f->algs[i].implementation = f->alg[i].table;
        }
        memset(&f->algs[i], 0, sizeof(f->algs[i]));
        f->ready = 1;
    }
    pthread_mutex_unlock(&f->lock);
    return f->algs;
}
