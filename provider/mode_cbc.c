/*
 * AES-CBC: partial-block buffering, PKCS#7 padding, IV chaining and the TLS
 * record mode (padding added on seal, padding and MAC removed on open).
 * Whole blocks go to the backend as single ops.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/prov_ssl.h>

#include "cipher.h"

/* Runs whole blocks through the backend and chains the IV. */
static int cbc_blocks(KA_GENERIC_CTX *g, unsigned char *out, const unsigned char *in, size_t len)
{
    struct kaio_op op = { 0 };
    unsigned char next[KAIO_BLOCK] = { 0 };

    if (len == 0)
        return 1;
    if (!g->base.enc)
        memcpy(next, in + len - KAIO_BLOCK, KAIO_BLOCK); /* in place: gone after the op */
    op.encrypt = g->base.enc;
    op.iv = g->iv;
    op.ivlen = KAIO_BLOCK;
    op.in = in;
    op.out = out;
    op.len = len;
    if (!ka_run(g->base.key, &op, 1))
        return 0;
    if (g->base.enc)
        memcpy(next, out + len - KAIO_BLOCK, KAIO_BLOCK);
    memcpy(g->iv, next, KAIO_BLOCK);
    return 1;
}

static int cbc_tls_record(KA_GENERIC_CTX *g, unsigned char *out, size_t *outl, size_t outsize,
                          const unsigned char *in, size_t inl)
{
    unsigned char randmac[KA_TLS_MAX_MAC];
    size_t off, len;

    /* libssl hands each record in place, with room for the padding. */
    if (in == NULL || in != out || outsize < inl || !g->pad) {
        ka_raise(g->base.prov, KA_R_TLS_RECORD, "TLS records are processed in place with padding on");
        return 0;
    }
    if (g->base.enc) {
        if (!ka_tls_cbc_pad(g->tlsversion, out, inl, outsize, &inl)) {
            ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, "no room for the TLS padding");
            return 0;
        }
    }
    if (inl % KAIO_BLOCK != 0) {
        ka_raise(g->base.prov, KA_R_TLS_RECORD, "record of %zu bytes is not whole blocks", inl);
        return 0;
    }
    if (!cbc_blocks(g, out, in, inl))
        return 0;
    *outl = inl;
    if (g->base.enc)
        return 1;
    if (g->tlsmacsize > 0 && !ka_rand(g->base.prov, randmac, g->tlsmacsize))
        return 0;
    if (!ka_tls_cbc_unpad(g->tlsversion, out, inl, g->tlsmacsize, randmac, g->tlsmac, &off, &len)) {
        ka_raise(g->base.prov, KA_R_TLS_RECORD, "TLS record padding or length is invalid");
        return 0;
    }
    /* libssl skips the explicit IV itself; the length excludes it. */
    *outl = len;
    return 1;
}

static int cbc_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    KA_GENERIC_CTX *g = vctx;
    size_t outlint = 0, nextblocks;

    if (!ka_check_io(&g->base, out, in, inl, g->tlsversion > 0 ? 0 : g->bufsz))
        return 0;
    if (g->tlsversion > 0)
        return cbc_tls_record(g, out, outl, outsize, in, inl);

    if (g->bufsz != 0) {
        size_t take = KAIO_BLOCK - g->bufsz < inl ? KAIO_BLOCK - g->bufsz : inl;

        if (take > 0)
            memcpy(g->buf + g->bufsz, in, take);
        g->bufsz += take;
        in += take;
        inl -= take;
    }
    nextblocks = inl & ~(size_t)(KAIO_BLOCK - 1);
    /* Decrypting with padding holds the last whole block back for final. */
    if (g->bufsz == KAIO_BLOCK && (g->base.enc || inl > 0 || !g->pad)) {
        if (outsize < KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
            return 0;
        }
        if (out == NULL) {
            ka_raise(g->base.prov, KA_R_NULL_BUFFER, "output buffer is NULL");
            return 0;
        }
        if (!cbc_blocks(g, out, g->buf, KAIO_BLOCK))
            return 0;
        g->bufsz = 0;
        outlint = KAIO_BLOCK;
        out += KAIO_BLOCK;
    }
    if (nextblocks > 0) {
        if (!g->base.enc && g->pad && nextblocks == inl)
            nextblocks -= KAIO_BLOCK;
        if (outsize < outlint + nextblocks) {
            ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
            return 0;
        }
    }
    if (nextblocks > 0) {
        if (!cbc_blocks(g, out, in, nextblocks))
            return 0;
        outlint += nextblocks;
        in += nextblocks;
        inl -= nextblocks;
    }
    if (inl > 0) {
        if (g->bufsz + inl > KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_OPERATION_FAILED, "internal buffer overflow");
            return 0;
        }
        memcpy(g->buf + g->bufsz, in, inl);
        g->bufsz += inl;
    }
    *outl = outlint;
    return 1;
}

static int cbc_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    KA_GENERIC_CTX *g = vctx;

    if (!g->base.key_set) {
        ka_raise(g->base.prov, KA_R_NO_KEY_SET, NULL);
        return 0;
    }
    if (g->tlsversion > 0) {
        ka_raise(g->base.prov, KA_R_TLS_RECORD, "no final in TLS record mode");
        return 0;
    }
    if (g->base.enc) {
        if (g->pad) {
            unsigned char v = (unsigned char)(KAIO_BLOCK - g->bufsz);

            memset(g->buf + g->bufsz, v, v);
            g->bufsz = KAIO_BLOCK;
        } else if (g->bufsz == 0) {
            *outl = 0;
            return 1;
        } else if (g->bufsz != KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_WRONG_FINAL_BLOCK_LENGTH,
                     "%zu bytes left over with padding off", g->bufsz);
            return 0;
        }
        if (outsize < KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
            return 0;
        }
        if (out == NULL) {
            ka_raise(g->base.prov, KA_R_NULL_BUFFER, "output buffer is NULL");
            return 0;
        }
        if (!cbc_blocks(g, out, g->buf, KAIO_BLOCK))
            return 0;
        g->bufsz = 0;
        *outl = KAIO_BLOCK;
        return 1;
    }
    if (g->bufsz != KAIO_BLOCK) {
        if (g->bufsz == 0 && !g->pad) {
            *outl = 0;
            return 1;
        }
        ka_raise(g->base.prov, KA_R_WRONG_FINAL_BLOCK_LENGTH,
                 "%zu bytes left over, a whole block expected", g->bufsz);
        return 0;
    }
    if (!cbc_blocks(g, g->buf, g->buf, KAIO_BLOCK))
        return 0;
    if (g->pad) {
        unsigned int pad = g->buf[KAIO_BLOCK - 1], i;

        if (pad == 0 || pad > KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_BAD_DECRYPT, NULL);
            return 0;
        }
        for (i = 0; i < pad; i++)
            if (g->buf[KAIO_BLOCK - 1 - i] != pad) {
                ka_raise(g->base.prov, KA_R_BAD_DECRYPT, NULL);
                return 0;
            }
        g->bufsz = KAIO_BLOCK - pad;
    }
    if (outsize < g->bufsz) {
        ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
        return 0;
    }
    if (g->bufsz > 0 && out == NULL) {
        ka_raise(g->base.prov, KA_R_NULL_BUFFER, "output buffer is NULL");
        return 0;
    }
    if (g->bufsz > 0)
        memcpy(out, g->buf, g->bufsz);
    *outl = g->bufsz;
    g->bufsz = 0;
    return 1;
}

/* EVP_Cipher: whole blocks straight through, no padding or buffering. */
static int cbc_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    KA_GENERIC_CTX *g = vctx;

    if (!ka_check_io(&g->base, out, in, inl, 0))
        return 0;
    if (outsize < inl) {
        ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, NULL);
        return 0;
    }
    if (inl % KAIO_BLOCK != 0) {
        ka_raise(g->base.prov, KA_R_WRONG_FINAL_BLOCK_LENGTH, "EVP_Cipher on CBC takes whole blocks");
        return 0;
    }
    if (!cbc_blocks(g, out, in, inl))
        return 0;
    *outl = inl;
    return 1;
}

static int cbc_einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return ka_generic_init(vctx, key, keylen, iv, ivlen, params, 1);
}

static int cbc_dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                     size_t ivlen, const OSSL_PARAM params[])
{
    return ka_generic_init(vctx, key, keylen, iv, ivlen, params, 0);
}

#define CBC_ALG(bits)                                                                        \
    static void *cbc##bits##_newctx(void *provctx)                                           \
    {                                                                                        \
        return ka_generic_newctx(provctx, KAIO_CBC, bits / 8);                               \
    }                                                                                        \
    static int cbc##bits##_get_params(OSSL_PARAM params[])                                   \
    {                                                                                        \
        return ka_cipher_get_params(params, EVP_CIPH_CBC_MODE, 0, bits / 8, KAIO_BLOCK,      \
                                    KAIO_BLOCK);                                             \
    }                                                                                        \
    KA_CIPHER_DISPATCH(ka_aes##bits##cbc_functions, cbc##bits##_newctx, cbc##bits##_get_params, \
        { OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))ka_generic_freectx },                   \
        { OSSL_FUNC_CIPHER_DUPCTX, (void (*)(void))ka_generic_dupctx },                     \
        { OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))cbc_einit },                       \
        { OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))cbc_dinit },                       \
        { OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))cbc_update },                            \
        { OSSL_FUNC_CIPHER_FINAL, (void (*)(void))cbc_final },                              \
        { OSSL_FUNC_CIPHER_CIPHER, (void (*)(void))cbc_cipher },                            \
        { OSSL_FUNC_CIPHER_GET_CTX_PARAMS, (void (*)(void))ka_generic_get_ctx_params },     \
        { OSSL_FUNC_CIPHER_SET_CTX_PARAMS, (void (*)(void))ka_generic_set_ctx_params },     \
        { OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))ka_generic_gettable_ctx_params }, \
        { OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))ka_generic_settable_ctx_params })

CBC_ALG(128);
CBC_ALG(192);
CBC_ALG(256);
