/*
 * AES-CBC: partial-block buffering, PKCS#7 padding, IV chaining and the TLS
 * record mode (padding added on seal, padding and MAC removed on open).
 * Whole blocks go to the backend as single ops.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/prov_ssl.h>

#include "cipher.h"
#include "pipeline.h"

/*
 * One op over whole blocks under iv. next gets the IV that follows it when
 * decrypting (the last input block, gone after an in-place op).
 */
static void cbc_op(int enc, const unsigned char *iv, struct kaio_op *op, unsigned char *out,
                   const unsigned char *in, size_t len, unsigned char next[KAIO_BLOCK])
{
    memset(op, 0, sizeof(*op));
    if (!enc)
        memcpy(next, in + len - KAIO_BLOCK, KAIO_BLOCK);
    op->encrypt = enc;
    op->iv = iv;
    op->ivlen = KAIO_BLOCK;
    op->in = in;
    op->out = out;
    op->len = len;
}

/* After the op ran: chain the IV (encrypting: the last output block). */
static void cbc_op_done(int enc, unsigned char iv[KAIO_BLOCK], const struct kaio_op *op,
                        unsigned char next[KAIO_BLOCK])
{
    if (enc)
        memcpy(next, op->out + op->len - KAIO_BLOCK, KAIO_BLOCK);
    memcpy(iv, next, KAIO_BLOCK);
}

/* PKCS#7: the unpadded length of a decrypted last block; 0 when the padding is bad. */
static int cbc_unpad(const unsigned char block[KAIO_BLOCK], size_t *len)
{
    unsigned int pad = block[KAIO_BLOCK - 1], i;

    if (pad == 0 || pad > KAIO_BLOCK)
        return 0;
    for (i = 0; i < pad; i++)
        if (block[KAIO_BLOCK - 1 - i] != pad)
            return 0;
    *len = KAIO_BLOCK - pad;
    return 1;
}

/* Runs whole blocks through the backend and chains the IV. */
static int cbc_blocks(KA_GENERIC_CTX *g, unsigned char *out, const unsigned char *in, size_t len)
{
    struct kaio_op op;
    unsigned char next[KAIO_BLOCK] = { 0 };

    if (len == 0)
        return 1;
    cbc_op(g->base.enc, g->iv, &op, out, in, len, next);
    if (!ka_run(g->base.key, &op, 1))
        return 0;
    cbc_op_done(g->base.enc, g->iv, &op, next);
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

/* The whole block held in g->buf goes through the cipher to out. */
static int flush_block(KA_GENERIC_CTX *g, unsigned char *out, size_t outsize)
{
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
        if (!flush_block(g, out, outsize))
            return 0;
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
        ka_raise_no_key(&g->base);
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
        if (!flush_block(g, out, outsize))
            return 0;
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
    if (g->pad && !cbc_unpad(g->buf, &g->bufsz)) {
        ka_raise(g->base.prov, KA_R_BAD_DECRYPT, NULL);
        return 0;
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

    if (!ka_check_io_size(&g->base, out, outsize, in, inl))
        return 0;
    if (inl % KAIO_BLOCK != 0) {
        ka_raise(g->base.prov, KA_R_WRONG_FINAL_BLOCK_LENGTH, "EVP_Cipher on CBC takes whole blocks");
        return 0;
    }
    if (!cbc_blocks(g, out, in, inl))
        return 0;
    *outl = inl;
    return 1;
}

/* ---- Pipelines: one op per pipe per call, all pipes in one batch ---- */

/*
 * Bytes of buffered ‖ new input an update releases; the rest stays buffered.
 * Same split as cbc_update: decrypting with padding holds the last whole
 * block back for final.
 */
static size_t cbc_release(int enc, int pad, size_t total)
{
    size_t whole = total & ~(size_t)(KAIO_BLOCK - 1);

    if (!enc && pad && whole == total && whole > 0)
        whole -= KAIO_BLOCK;
    return whole;
}

/* In place, a pipe's output trails its input by what it has buffered. */
static size_t cbc_pipe_lag(const KA_PIPES *ps, size_t i)
{
    return ps->pipe[i].bufsz;
}

static int cbc_pipe_update(void *vctx, size_t n, unsigned char **out, size_t *outl,
                           const size_t *outsize, const unsigned char **in, const size_t *inl)
{
    KA_GENERIC_CTX *g = vctx;
    KA_PIPES *ps;
    struct kaio_op ops[KA_MAX_PIPES];
    unsigned char next[KA_MAX_PIPES][KAIO_BLOCK];
    size_t rel[KA_MAX_PIPES], idx[KA_MAX_PIPES], nops = 0, scratch = 0, i;
    unsigned char *tmp = NULL, *t;
    int ok = 0;

    if ((ps = ka_pipe_check_update(&g->base, n, out, outl, outsize, in, inl, 0, cbc_pipe_lag)) == NULL)
        return 0;
    if (g->tlsversion > 0) {
        ka_raise(g->base.prov, KA_R_PIPELINE, "TLS record mode does not pipeline");
        return 0;
    }
    for (i = 0; i < n; i++) {
        rel[i] = cbc_release(ps->enc, g->pad, ps->pipe[i].bufsz + inl[i]);
        if (outsize[i] < rel[i]) {
            ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, "pipe %zu: room for %zu bytes, %zu needed",
                     i, outsize[i], rel[i]);
            return 0;
        }
        if (rel[i] > 0 && ps->pipe[i].bufsz > 0)
            scratch += rel[i];
    }
    /* A pipe with buffered bytes gets one contiguous input: buffer ‖ new bytes. */
    if (scratch > 0 && (tmp = ka_pipe_scratch(&g->base, scratch)) == NULL)
        return 0;
    t = tmp;
    for (i = 0; i < n; i++) {
        KA_PIPE *p = &ps->pipe[i];
        const unsigned char *src = in[i];
        size_t keep = p->bufsz + inl[i] - rel[i];

        if (rel[i] == 0) {
            if (inl[i] > 0)
                memcpy(p->buf + p->bufsz, in[i], inl[i]);
            p->bufsz += inl[i];
            continue;
        }
        if (p->bufsz > 0) {
            memcpy(t, p->buf, p->bufsz);
            memcpy(t + p->bufsz, in[i], rel[i] - p->bufsz);
            src = t;
            t += rel[i];
        }
        cbc_op(ps->enc, p->iv, &ops[nops], out[i], src, rel[i], next[nops]);
        idx[nops++] = i;
        /* The tail lies past what the op reads; keep it now, in place the op overwrites in. */
        memcpy(p->buf, in[i] + inl[i] - keep, keep);
        p->bufsz = keep;
    }
    if (nops > 0 && !ka_run(g->base.key, ops, nops))
        goto end;
    for (i = 0; i < nops; i++)
        cbc_op_done(ps->enc, ps->pipe[idx[i]].iv, &ops[i], next[i]);
    for (i = 0; i < n; i++)
        outl[i] = rel[i];
    ok = 1;
end:
    OPENSSL_clear_free(tmp, scratch);
    return ok;
}

static int cbc_pipe_final(void *vctx, size_t n, unsigned char **out, size_t *outl,
                          const size_t *outsize)
{
    KA_GENERIC_CTX *g = vctx;
    KA_PIPES *ps;
    struct kaio_op ops[KA_MAX_PIPES];
    unsigned char next[KA_MAX_PIPES][KAIO_BLOCK];
    size_t idx[KA_MAX_PIPES], nops = 0, i, k, len;
    int failed[KA_MAX_PIPES] = { 0 }, ok = 1;

    if ((ps = ka_pipe_check_final(&g->base, n, out, outl, outsize)) == NULL)
        return 0;
    if (ps->enc) {
        /* Caller errors first, so a refused call writes nothing. */
        for (i = 0; i < n; i++) {
            if (!g->pad && ps->pipe[i].bufsz == 0)
                continue;
            if (outsize[i] < KAIO_BLOCK || out[i] == NULL) {
                ka_raise(g->base.prov, out[i] == NULL ? KA_R_NULL_BUFFER : KA_R_OUTPUT_BUFFER_TOO_SMALL,
                         "pipe %zu: a %d-byte output buffer is needed", i, KAIO_BLOCK);
                return 0;
            }
        }
    }
    for (i = 0; i < n; i++) {
        KA_PIPE *p = &ps->pipe[i];

        outl[i] = 0;
        if (ps->enc && g->pad) {
            unsigned char v = (unsigned char)(KAIO_BLOCK - p->bufsz);

            memset(p->buf + p->bufsz, v, v);
            p->bufsz = KAIO_BLOCK;
        }
        if (p->bufsz == 0 && !g->pad)
            continue;
        if (p->bufsz != KAIO_BLOCK) {
            ka_raise(g->base.prov, KA_R_WRONG_FINAL_BLOCK_LENGTH, "pipe %zu: %zu bytes left over, %s", i,
                     p->bufsz, ps->enc ? "padding is off" : "a whole block expected");
            failed[i] = 1;
            continue;
        }
        cbc_op(ps->enc, p->iv, &ops[nops], ps->enc ? out[i] : p->buf, p->buf, KAIO_BLOCK, next[nops]);
        idx[nops++] = i;
    }
    if (nops > 0 && !ka_run(g->base.key, ops, nops))
        return 0;
    for (k = 0; k < nops; k++) {
        KA_PIPE *p = &ps->pipe[idx[k]];

        i = idx[k];
        if (ps->enc) {
            outl[i] = KAIO_BLOCK;
            continue;
        }
        len = KAIO_BLOCK;
        if (g->pad && !cbc_unpad(p->buf, &len)) {
            ka_raise(g->base.prov, KA_R_BAD_DECRYPT, "pipe %zu", i);
            failed[i] = 1;
        } else if (outsize[i] < len || (len > 0 && out[i] == NULL)) {
            ka_raise(g->base.prov, out[i] == NULL ? KA_R_NULL_BUFFER : KA_R_OUTPUT_BUFFER_TOO_SMALL,
                     "pipe %zu: room for %zu bytes, %zu needed", i, outsize[i], len);
            failed[i] = 1;
        } else {
            memcpy(out[i], p->buf, len);
            outl[i] = len;
        }
    }
    for (i = 0; i < n; i++) {
        OPENSSL_cleanse(ps->pipe[i].buf, KAIO_BLOCK);
        ps->pipe[i].bufsz = 0;
        if (failed[i])
            ok = 0;
    }
    ps->finished = 1;
    return ok;
}

KA_GENERIC_ALG(cbc, KAIO_CBC, EVP_CIPH_CBC_MODE, KAIO_BLOCK, 128);
KA_GENERIC_ALG(cbc, KAIO_CBC, EVP_CIPH_CBC_MODE, KAIO_BLOCK, 192);
KA_GENERIC_ALG(cbc, KAIO_CBC, EVP_CIPH_CBC_MODE, KAIO_BLOCK, 256);
