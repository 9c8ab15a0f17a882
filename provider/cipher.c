/* Generic cipher glue; see cipher.h. */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cipher.h"
#include "pipeline.h"

void ka_ctx_init(KA_CTX *c, KA_PROV *p, enum kaio_mode mode, size_t keylen)
{
    c->prov = p;
    c->mode = mode;
    c->keylen = keylen;
}

int ka_ctx_dup(KA_CTX *dst, const KA_CTX *src)
{
    *dst = *src;
    dst->key = NULL;
    dst->pipes = NULL;
    if (src->key != NULL && (dst->key = ka_key_dup(src->key)) == NULL)
        return 0;
    if (src->pipes != NULL && (dst->pipes = ka_pipes_dup(src->pipes)) == NULL) {
        ka_key_free(dst->key);
        dst->key = NULL;
        return 0;
    }
    return 1;
}

void ka_ctx_cleanup(KA_CTX *c)
{
    ka_key_free(c->key);
    c->key = NULL;
    ka_pipes_free(c->pipes);
    c->pipes = NULL;
}

int ka_ctx_setkey(KA_CTX *c, const unsigned char *key, size_t keylen)
{
    KA_KEY *k;

    if (keylen != c->keylen) {
        ka_raise(c->prov, KA_R_INVALID_KEY_LENGTH, "%zu bytes given, %zu expected", keylen, c->keylen);
        return 0;
    }
    if ((k = ka_key_new(c->prov, c->mode, key, keylen)) == NULL)
        return 0;
    ka_key_free(c->key);
    c->key = k;
    c->key_set = 1;
    return 1;
}

void ka_raise_no_key(const KA_CTX *c)
{
    if (c->pipeline)
        ka_raise(c->prov, KA_R_PIPELINE_MIXED,
                 "pipeline-initialised: use EVP_CipherPipelineUpdate/Final, or initialise it again");
    else
        ka_raise(c->prov, KA_R_NO_KEY_SET, NULL);
}

int ka_check_io(const KA_CTX *c, const unsigned char *out, const unsigned char *in, size_t inl,
                size_t lag)
{
    if (!c->key_set) {
        ka_raise_no_key(c);
        return 0;
    }
    if (inl == 0)
        return 1;
    if (inl > KA_MAX_LEN) {
        ka_raise(c->prov, KA_R_DATA_TOO_LONG, "%zu bytes (a negative length?)", inl);
        return 0;
    }
    if (in == NULL || out == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "%s buffer is NULL", in == NULL ? "input" : "output");
        return 0;
    }
    /* In place counts from the buffered bytes on: out may trail in by exactly lag. */
    if (out + lag != in && (uintptr_t)out < (uintptr_t)in + inl
        && (uintptr_t)in < (uintptr_t)out + inl + lag) {
        ka_raise(c->prov, KA_R_OVERLAP, "input and output overlap without being the same buffer");
        return 0;
    }
    return 1;
}

int ka_check_io_size(const KA_CTX *c, const unsigned char *out, size_t outsize,
                     const unsigned char *in, size_t inl)
{
    if (!ka_check_io(c, out, in, inl, 0))
        return 0;
    if (outsize < inl) {
        ka_raise(c->prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, "%zu bytes of room for %zu", outsize, inl);
        return 0;
    }
    return 1;
}

/* OpenSSL 3.6 asks every cipher whether it is encrypt-then-MAC; older releases never do. */
#ifndef OSSL_CIPHER_PARAM_ENCRYPT_THEN_MAC
#define OSSL_CIPHER_PARAM_ENCRYPT_THEN_MAC "encrypt-then-mac"
#endif

static const OSSL_PARAM cipher_gettable[] = {
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_ENCRYPT_THEN_MAC, NULL),
    OSSL_PARAM_END
};

const OSSL_PARAM *ka_cipher_gettable_params(void *provctx)
{
    (void)provctx;
    return cipher_gettable;
}

int ka_param_set_octets(OSSL_PARAM *p, const void *val, size_t len)
{
    if (p->data_type == OSSL_PARAM_OCTET_PTR)
        return OSSL_PARAM_set_octet_ptr(p, val, len);
    return OSSL_PARAM_set_octet_string(p, val, len);
}

int ka_cipher_get_params(OSSL_PARAM params[], unsigned int evp_mode, int aead,
                         size_t keylen, size_t blocksize, size_t ivlen)
{
    struct { const char *key; int v; } ints[] = {
        { OSSL_CIPHER_PARAM_AEAD, aead },
        { OSSL_CIPHER_PARAM_CUSTOM_IV, aead },
        { OSSL_CIPHER_PARAM_CTS, 0 },
        { OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, 0 },
        { OSSL_CIPHER_PARAM_HAS_RAND_KEY, 0 },
        { OSSL_CIPHER_PARAM_ENCRYPT_THEN_MAC, 0 },
    };
    struct { const char *key; size_t v; } sizes[] = {
        { OSSL_CIPHER_PARAM_KEYLEN, keylen },
        { OSSL_CIPHER_PARAM_BLOCK_SIZE, blocksize },
        { OSSL_CIPHER_PARAM_IVLEN, ivlen },
    };
    OSSL_PARAM *p;
    size_t i;

    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) != NULL
        && !OSSL_PARAM_set_uint(p, evp_mode))
        return 0;
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if ((p = OSSL_PARAM_locate(params, ints[i].key)) != NULL && !OSSL_PARAM_set_int(p, ints[i].v))
            return 0;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        if ((p = OSSL_PARAM_locate(params, sizes[i].key)) != NULL && !OSSL_PARAM_set_size_t(p, sizes[i].v))
            return 0;
    return 1;
}

void ka_ctr_add(unsigned char ctr[KAIO_BLOCK], uint64_t blocks)
{
    int i;
    unsigned int carry;

    for (i = KAIO_BLOCK - 1; i >= 0 && blocks != 0; i--) {
        carry = (unsigned int)ctr[i] + (unsigned int)(blocks & 0xff);
        ctr[i] = (unsigned char)carry;
        blocks = (blocks >> 8) + (carry >> 8);
    }
}

/* ---- CBC and CTR: OpenSSL's generic cipher context ---- */

void *ka_generic_newctx(void *provctx, enum kaio_mode mode, size_t keylen)
{
    KA_GENERIC_CTX *g = OPENSSL_zalloc(sizeof(*g));

    if (g == NULL)
        return NULL;
    ka_ctx_init(&g->base, provctx, mode, keylen);
    g->pad = 1;
    return g;
}

void *ka_generic_dupctx(void *vctx)
{
    KA_GENERIC_CTX *src = vctx, *d = OPENSSL_malloc(sizeof(*d));

    if (d == NULL)
        return NULL;
    memcpy(d, src, sizeof(*d));
    if (!ka_ctx_dup(&d->base, &src->base)) {
        OPENSSL_clear_free(d, sizeof(*d));
        return NULL;
    }
    return d;
}

void ka_generic_freectx(void *vctx)
{
    KA_GENERIC_CTX *g = vctx;

    if (g == NULL)
        return;
    ka_ctx_cleanup(&g->base);
    OPENSSL_clear_free(g, sizeof(*g));
}

int ka_generic_init(KA_GENERIC_CTX *g, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[], int enc)
{
    g->num = 0;
    g->bufsz = 0;
    g->base.enc = enc ? 1 : 0;
    g->base.pipeline = 0;
    if (iv != NULL) {
        if (ivlen != KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_INVALID_IV_LENGTH, "%zu bytes given, 16 expected", ivlen);
            return 0;
        }
        memcpy(g->iv, iv, KAIO_BLOCK);
        memcpy(g->oiv, iv, KAIO_BLOCK);
        g->iv_set = 1;
    } else if (g->iv_set && g->base.mode == KAIO_CBC) {
        /* OpenSSL restarts CBC (not CTR) from the original IV on a re-init without one. */
        memcpy(g->iv, g->oiv, KAIO_BLOCK);
    }
    if (key != NULL && !ka_ctx_setkey(&g->base, key, keylen))
        return 0;
    return ka_generic_set_ctx_params(g, params);
}

int ka_generic_einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return ka_generic_init(vctx, key, keylen, iv, ivlen, params, 1);
}

int ka_generic_dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return ka_generic_init(vctx, key, keylen, iv, ivlen, params, 0);
}

int ka_generic_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    KA_GENERIC_CTX *g = vctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, KAIO_BLOCK))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_PADDING)) != NULL
        && !OSSL_PARAM_set_uint(p, g->pad))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IV)) != NULL
        && !ka_param_set_octets(p, g->oiv, KAIO_BLOCK))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_UPDATED_IV)) != NULL
        && !ka_param_set_octets(p, g->iv, KAIO_BLOCK))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_NUM)) != NULL
        && !OSSL_PARAM_set_uint(p, g->num))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, g->base.keylen))
        goto fail;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_TLS_MAC)) != NULL
        && !OSSL_PARAM_set_octet_ptr(p, g->tlsmac, g->tlsmacsize))
        goto fail;
    return 1;
fail:
    ka_raise(g->base.prov, KA_R_FAILED_TO_SET_PARAMETER, "%s", p->key);
    return 0;
}

int ka_generic_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    KA_GENERIC_CTX *g = vctx;
    const OSSL_PARAM *p;
    unsigned int u;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_PADDING)) != NULL) {
        if (!OSSL_PARAM_get_uint(p, &u))
            goto fail;
        g->pad = u ? 1 : 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_USE_BITS)) != NULL
        && !OSSL_PARAM_get_uint(p, &u))
        goto fail; /* accepted and meaningless for AES CBC/CTR, as in OpenSSL */
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_TLS_VERSION)) != NULL
        && !OSSL_PARAM_get_uint(p, &g->tlsversion))
        goto fail;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_TLS_MAC_SIZE)) != NULL) {
        size_t sz;

        if (!OSSL_PARAM_get_size_t(p, &sz) || sz > KA_TLS_MAX_MAC)
            goto fail;
        g->tlsmacsize = sz;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_NUM)) != NULL) {
        size_t blocksize = g->base.mode == KAIO_CBC ? KAIO_BLOCK : 1;

        if (!OSSL_PARAM_get_uint(p, &u) || u >= blocksize)
            goto fail;
        g->num = u;
    }
    return 1;
fail:
    ka_raise(g->base.prov, KA_R_FAILED_TO_GET_PARAMETER, "%s", p->key);
    return 0;
}

static const OSSL_PARAM generic_gettable_ctx[] = {
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_PADDING, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_NUM, NULL),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, NULL, 0),
    OSSL_PARAM_octet_ptr(OSSL_CIPHER_PARAM_TLS_MAC, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM generic_settable_ctx[] = {
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_PADDING, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_NUM, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_USE_BITS, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_TLS_VERSION, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_TLS_MAC_SIZE, NULL),
    OSSL_PARAM_END
};

const OSSL_PARAM *ka_generic_gettable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx;
    (void)provctx;
    return generic_gettable_ctx;
}

const OSSL_PARAM *ka_generic_settable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx;
    (void)provctx;
    return generic_settable_ctx;
}
