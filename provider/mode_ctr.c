/*
 * AES-CTR: a 128-bit big-endian counter, resumable in the middle of a block.
 * Whole blocks and the keystream of a trailing partial block go to the
 * backend together, as one batch of independent ops.
 */
#include <string.h>
#include <openssl/evp.h>

#include "cipher.h"
#include "pipeline.h"

static const unsigned char zero_block[KAIO_BLOCK];

static int ctr_crypt(KA_GENERIC_CTX *g, unsigned char *out, const unsigned char *in, size_t len)
{
    struct kaio_op ops[2] = { { 0 }, { 0 } };
    unsigned char ctr_tail[KAIO_BLOCK];
    size_t n = 0, whole, tail, i;

    /* Finish the block a previous update started. */
    while (g->num != 0 && len > 0) {
        *out++ = *in++ ^ g->buf[g->num];
        g->num = (g->num + 1) % KAIO_BLOCK;
        len--;
    }
    if (len == 0)
        return 1;
    whole = len & ~(size_t)(KAIO_BLOCK - 1);
    tail = len - whole;
    if (whole > 0) {
        ops[n].iv = g->iv;
        ops[n].in = in;
        ops[n].out = out;
        ops[n].len = whole;
        n++;
    }
    if (tail > 0) {
        /* The partial block's keystream is kept for the next update. */
        memcpy(ctr_tail, g->iv, KAIO_BLOCK);
        ka_ctr_add(ctr_tail, whole / KAIO_BLOCK);
        ops[n].iv = ctr_tail;
        ops[n].in = zero_block;
        ops[n].out = g->buf;
        ops[n].len = KAIO_BLOCK;
        n++;
    }
    for (i = 0; i < n; i++) {
        ops[i].encrypt = 1;
        ops[i].ivlen = KAIO_BLOCK;
    }
    if (n > 0 && !ka_run(g->base.key, ops, n))
        return 0;
    ka_ctr_add(g->iv, whole / KAIO_BLOCK + (tail > 0));
    for (i = 0; i < tail; i++)
        out[whole + i] = in[whole + i] ^ g->buf[i];
    g->num = (unsigned int)tail;
    return 1;
}

static int ctr_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    KA_GENERIC_CTX *g = vctx;

    if (!ka_check_io_size(&g->base, out, outsize, in, inl) || !ctr_crypt(g, out, in, inl))
        return 0;
    *outl = inl;
    return 1;
}

static int ctr_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    KA_GENERIC_CTX *g = vctx;

    (void)out;
    (void)outsize;
    if (!g->base.key_set) {
        ka_raise_no_key(&g->base);
        return 0;
    }
    *outl = 0;
    return 1;
}

/* A stream mode: EVP_Cipher is an update. */
static int ctr_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                      const unsigned char *in, size_t inl)
{
    return ctr_update(vctx, out, outl, outsize, in, inl);
}

/*
 * Pipelines: one op per pipe per call, all pipes in one batch (ctr_crypt's
 * separate keystream op for a partial block would double the ops past one
 * batch). A pipe keeps the counter of its current block and how much of it
 * is used; an update that starts mid-block runs its op from the block start
 * over a scratch copy and drops the leading bytes.
 */
static int ctr_pipe_update(void *vctx, size_t n, unsigned char **out, size_t *outl,
                           const size_t *outsize, const unsigned char **in, const size_t *inl)
{
    KA_GENERIC_CTX *g = vctx;
    KA_PIPES *ps;
    struct kaio_op ops[KA_MAX_PIPES];
    size_t idx[KA_MAX_PIPES], nops = 0, scratch = 0, i, k;
    unsigned char *tmp = NULL, *t;
    int ok = 0;

    if ((ps = ka_pipe_check_update(&g->base, n, out, outl, outsize, in, inl, 0, NULL)) == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        if (outsize[i] < inl[i]) {
            ka_raise(g->base.prov, KA_R_OUTPUT_BUFFER_TOO_SMALL, "pipe %zu: room for %zu bytes, %zu needed",
                     i, outsize[i], inl[i]);
            return 0;
        }
        if (inl[i] > 0 && ps->pipe[i].num != 0)
            scratch += ps->pipe[i].num + inl[i];
    }
    if (scratch > 0 && (tmp = ka_pipe_scratch(&g->base, scratch)) == NULL)
        return 0;
    t = tmp;
    for (i = 0; i < n; i++) {
        KA_PIPE *p = &ps->pipe[i];
        struct kaio_op *op = &ops[nops];

        if (inl[i] == 0)
            continue;
        memset(op, 0, sizeof(*op));
        op->encrypt = 1;
        op->iv = p->iv;
        op->ivlen = KAIO_BLOCK;
        if (p->num == 0) {
            op->in = in[i];
            op->out = out[i];
            op->len = inl[i];
        } else {
            memset(t, 0, p->num);
            memcpy(t + p->num, in[i], inl[i]);
            op->in = op->out = t;
            op->len = p->num + inl[i];
            t += op->len;
        }
        idx[nops++] = i;
    }
    if (nops > 0 && !ka_run(g->base.key, ops, nops))
        goto end;
    for (k = 0; k < nops; k++) {
        KA_PIPE *p = &ps->pipe[idx[k]];

        if (p->num != 0)
            memcpy(out[idx[k]], ops[k].out + p->num, inl[idx[k]]);
        ka_ctr_add(p->iv, ops[k].len / KAIO_BLOCK);
        p->num = (unsigned int)(ops[k].len % KAIO_BLOCK);
    }
    for (i = 0; i < n; i++)
        outl[i] = inl[i];
    ok = 1;
end:
    OPENSSL_clear_free(tmp, scratch);
    return ok;
}

static int ctr_pipe_final(void *vctx, size_t n, unsigned char **out, size_t *outl,
                          const size_t *outsize)
{
    KA_GENERIC_CTX *g = vctx;
    KA_PIPES *ps;
    size_t i;

    if ((ps = ka_pipe_check_final(&g->base, n, out, outl, outsize)) == NULL)
        return 0;
    for (i = 0; i < n; i++)
        outl[i] = 0;
    ps->finished = 1;
    return 1;
}

KA_GENERIC_ALG(ctr, KAIO_CTR, EVP_CIPH_CTR_MODE, 1, 128);
KA_GENERIC_ALG(ctr, KAIO_CTR, EVP_CIPH_CTR_MODE, 1, 192);
KA_GENERIC_ALG(ctr, KAIO_CTR, EVP_CIPH_CTR_MODE, 1, 256);
