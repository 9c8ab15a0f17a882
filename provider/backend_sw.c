/*
 * The software backend: libcrypto's default provider in the provider's
 * private library context. It runs whatever the kernel can't.
 */
#include <limits.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "backend.h"

struct sw_key {
    KA_PROV *prov;
    enum kaio_mode mode;
    EVP_CIPHER *cipher;
    unsigned char key[32];
    size_t keylen;
    EVP_CIPHER_CTX *ctx[2]; /* [decrypt, encrypt], keyed lazily */
};

struct sw_gcm {
    KA_PROV *prov;
    EVP_CIPHER_CTX *ctx;
    int enc;
};

static EVP_CIPHER *sw_cipher(KA_PROV *p, enum kaio_mode mode, size_t keylen)
{
    int ki = ka_keyidx(keylen);

    return ki < 0 ? NULL : p->sw_cipher[mode][ki];
}

SW_KEY *sw_key_new(KA_PROV *p, enum kaio_mode mode, const unsigned char *key, size_t keylen)
{
    SW_KEY *s;
    EVP_CIPHER *c = sw_cipher(p, mode, keylen);

    if (c == NULL) {
        ka_raise(p, KA_R_INVALID_KEY_LENGTH, "%zu-byte key", keylen);
        return NULL;
    }
    if ((s = OPENSSL_zalloc(sizeof(*s))) == NULL) {
        ka_raise(p, KA_R_MALLOC, NULL);
        return NULL;
    }
    s->prov = p;
    s->mode = mode;
    s->cipher = c;
    memcpy(s->key, key, keylen);
    s->keylen = keylen;
    return s;
}

void sw_key_free(SW_KEY *s)
{
    if (s == NULL)
        return;
    EVP_CIPHER_CTX_free(s->ctx[0]);
    EVP_CIPHER_CTX_free(s->ctx[1]);
    OPENSSL_clear_free(s, sizeof(*s));
}

static EVP_CIPHER_CTX *sw_ctx(SW_KEY *s, int enc)
{
    EVP_CIPHER_CTX **c = &s->ctx[enc ? 1 : 0];

    if (*c == NULL) {
        if ((*c = EVP_CIPHER_CTX_new()) == NULL
            || !EVP_CipherInit_ex2(*c, s->cipher, s->key, NULL, enc, NULL)
            || !EVP_CIPHER_CTX_set_padding(*c, 0)) {
            EVP_CIPHER_CTX_free(*c);
            *c = NULL;
            return NULL;
        }
    }
    return *c;
}

/* EVP lengths are ints: feed long inputs in pieces (the context chains them). */
static int sw_update(EVP_CIPHER_CTX *c, unsigned char *out, const unsigned char *in, size_t len)
{
    while (len > 0) {
        int n = len > (1u << 30) ? 1 << 30 : (int)len, outl;

        if (!EVP_CipherUpdate(c, out, &outl, in, n) || outl != n)
            return 0;
        in += n;
        out += n;
        len -= (size_t)n;
    }
    return 1;
}

static int sw_gcm_oneshot(EVP_CIPHER_CTX *c, struct kaio_op *op)
{
    OSSL_PARAM params[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
    size_t ivlen = op->ivlen;
    int outl;

    params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
    if (!EVP_CipherInit_ex2(c, NULL, NULL, NULL, op->encrypt, params)
        || !EVP_CipherInit_ex2(c, NULL, NULL, op->iv, op->encrypt, NULL))
        return 0;
    if (op->aadlen > 0) {
        const unsigned char *a = op->aad;
        size_t left = op->aadlen;

        while (left > 0) {
            int n = left > (1u << 30) ? 1 << 30 : (int)left;

            if (!EVP_CipherUpdate(c, NULL, &outl, a, n))
                return 0;
            a += n;
            left -= (size_t)n;
        }
    }
    if (!sw_update(c, op->out, op->in, op->len))
        return 0;
    if (op->encrypt) {
        unsigned char tag[16];

        if (!EVP_CipherFinal_ex(c, tag, &outl)
            || !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag))
            return 0;
        memcpy(op->tag, tag, op->taglen);
        op->status = 0;
        return 1;
    }
    if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)op->taglen, op->tag))
        return 0;
    op->status = EVP_CipherFinal_ex(c, NULL, &outl) ? 0 : KAIO_EBADMSG;
    return 1;
}

int sw_run(SW_KEY *s, struct kaio_op *ops, size_t n)
{
    size_t i;
    uint64_t bytes = 0;

    for (i = 0; i < n; i++) {
        struct kaio_op *op = &ops[i];
        EVP_CIPHER_CTX *c = sw_ctx(s, op->encrypt);
        int ok;

        if (c == NULL) {
            ka_raise(s->prov, KA_R_BACKEND, "software %s context", kaio_mode_name(s->mode));
            return 0;
        }
        if (s->mode == KAIO_GCM) {
            ok = sw_gcm_oneshot(c, op);
        } else {
            ok = EVP_CipherInit_ex2(c, NULL, NULL, op->iv, op->encrypt, NULL)
                && sw_update(c, op->out, op->in, op->len);
            op->status = 0;
        }
        if (!ok) {
            ka_raise(s->prov, KA_R_BACKEND, "software %s operation failed", kaio_mode_name(s->mode));
            return 0;
        }
        if (op->status == KAIO_EBADMSG)
            kaio_count(KAIO_C_TAG_FAILURES, 1);
        bytes += op->len;
    }
    kaio_count(KAIO_C_OPS_SOFTWARE, n);
    kaio_count(KAIO_C_BATCHES_SOFTWARE, 1);
    kaio_count(KAIO_C_BYTES_SOFTWARE, bytes);
    return 1;
}

SW_GCM *sw_gcm_new(KA_PROV *p, const unsigned char *key, size_t keylen, int enc,
                   const unsigned char *iv, size_t ivlen)
{
    SW_GCM *g = OPENSSL_zalloc(sizeof(*g));
    OSSL_PARAM params[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
    EVP_CIPHER *c = sw_cipher(p, KAIO_GCM, keylen);

    params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
    if (g == NULL || c == NULL || (g->ctx = EVP_CIPHER_CTX_new()) == NULL
        || !EVP_CipherInit_ex2(g->ctx, c, NULL, NULL, enc, params)
        || !EVP_CipherInit_ex2(g->ctx, NULL, key, iv, enc, NULL)) {
        ka_raise(p, KA_R_BACKEND, "software GCM stream");
        sw_gcm_free(g);
        return NULL;
    }
    g->prov = p;
    g->enc = enc;
    kaio_count(KAIO_C_BATCHES_SOFTWARE, 1);
    kaio_count(KAIO_C_OPS_SOFTWARE, 1);
    return g;
}

SW_GCM *sw_gcm_dup(const SW_GCM *g)
{
    SW_GCM *d = OPENSSL_zalloc(sizeof(*d));

    if (d == NULL || (d->ctx = EVP_CIPHER_CTX_new()) == NULL
        || !EVP_CIPHER_CTX_copy(d->ctx, g->ctx)) {
        sw_gcm_free(d);
        return NULL;
    }
    d->prov = g->prov;
    d->enc = g->enc;
    return d;
}

void sw_gcm_free(SW_GCM *g)
{
    if (g == NULL)
        return;
    EVP_CIPHER_CTX_free(g->ctx);
    OPENSSL_free(g);
}

int sw_gcm_aad(SW_GCM *g, const unsigned char *aad, size_t len)
{
    int outl;

    while (len > 0) {
        int n = len > (1u << 30) ? 1 << 30 : (int)len;

        if (!EVP_CipherUpdate(g->ctx, NULL, &outl, aad, n))
            return 0;
        aad += n;
        len -= (size_t)n;
    }
    return 1;
}

int sw_gcm_update(SW_GCM *g, const unsigned char *in, unsigned char *out, size_t len)
{
    kaio_count(KAIO_C_BYTES_SOFTWARE, len);
    return sw_update(g->ctx, out, in, len);
}

int sw_gcm_final(SW_GCM *g, unsigned char *tag, size_t taglen)
{
    int outl;

    if (g->enc)
        return EVP_CipherFinal_ex(g->ctx, NULL, &outl)
            && EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
    if (!EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_AEAD_SET_TAG, (int)taglen, tag))
        return 0;
    /* A failure here is counted by the caller, which knows if it is the final word. */
    return EVP_CipherFinal_ex(g->ctx, NULL, &outl);
}
