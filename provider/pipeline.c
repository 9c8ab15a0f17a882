/* Pipeline plumbing shared by the modes; see pipeline.h. */
#include <string.h>
#include <openssl/crypto.h>

#include "pipeline.h"

static void pipe_reset(KA_PIPE *p)
{
    /* Buffers are kept for reuse; the message state starts afresh. */
    sw_gcm_free(p->stream);
    p->stream = NULL;
    p->bufsz = 0;
    p->num = 0;
    p->aadlen = 0;
    p->savedlen = 0;
    p->taglen = 0;
    p->data_seen = 0;
    p->one_op = 0;
    p->withheld = 0;
    OPENSSL_cleanse(p->buf, sizeof(p->buf));
    OPENSSL_cleanse(p->tag, sizeof(p->tag));
}

void ka_pipes_free(KA_PIPES *ps)
{
    size_t i;

    if (ps == NULL)
        return;
    for (i = 0; i < KA_MAX_PIPES; i++) {
        sw_gcm_free(ps->pipe[i].stream);
        OPENSSL_clear_free(ps->pipe[i].aad, ps->pipe[i].aadcap);
        OPENSSL_clear_free(ps->pipe[i].saved, ps->pipe[i].savedcap);
    }
    OPENSSL_clear_free(ps, sizeof(*ps));
}

KA_PIPES *ka_pipes_dup(const KA_PIPES *src)
{
    KA_PIPES *d = OPENSSL_malloc(sizeof(*d));
    size_t i;

    if (d == NULL)
        return NULL;
    memcpy(d, src, sizeof(*d));
    for (i = 0; i < KA_MAX_PIPES; i++) {
        /* Owned copies only from here: a failure frees just what was copied. */
        d->pipe[i].aad = d->pipe[i].saved = NULL;
        d->pipe[i].aadcap = d->pipe[i].savedcap = 0;
        d->pipe[i].stream = NULL;
    }
    for (i = 0; i < KA_MAX_PIPES; i++) {
        const KA_PIPE *s = &src->pipe[i];
        KA_PIPE *p = &d->pipe[i];

        if (s->aadcap > 0) {
            if ((p->aad = OPENSSL_memdup(s->aad, s->aadcap)) == NULL)
                goto fail;
            p->aadcap = s->aadcap;
        }
        if (s->savedcap > 0) {
            if ((p->saved = OPENSSL_memdup(s->saved, s->savedcap)) == NULL)
                goto fail;
            p->savedcap = s->savedcap;
        }
        if (s->stream != NULL && (p->stream = sw_gcm_dup(s->stream)) == NULL)
            goto fail;
    }
    return d;
fail:
    ka_pipes_free(d);
    return NULL;
}

int ka_pipe_init(KA_CTX *c, const unsigned char *key, size_t keylen, size_t numpipes,
                 const unsigned char **iv, size_t ivlen, size_t ivmin, size_t ivmax, int enc)
{
    size_t i;

    /* Whatever happens below, the ordinary calls stay refused until a plain init. */
    c->pipeline = 1;
    c->key_set = 0;
    if (c->pipes != NULL)
        c->pipes->n = 0;
    if (numpipes == 0 || numpipes > KA_MAX_PIPES) {
        ka_raise(c->prov, KA_R_PIPELINE, "%zu pipes: 1 to %d allowed", numpipes, KA_MAX_PIPES);
        return 0;
    }
    if (iv == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "the IV array is NULL");
        return 0;
    }
    for (i = 0; i < numpipes; i++)
        if (iv[i] == NULL) {
            ka_raise(c->prov, KA_R_NULL_BUFFER, "pipe %zu: IV is NULL", i);
            return 0;
        }
    if (ivlen < ivmin || ivlen > ivmax) {
        ka_raise(c->prov, KA_R_INVALID_IV_LENGTH, "%zu bytes given, %zu to %zu allowed", ivlen,
                 ivmin, ivmax);
        return 0;
    }
    if (key != NULL) {
        if (!ka_ctx_setkey(c, key, keylen))
            return 0;
        c->key_set = 0;
    } else if (c->key == NULL) {
        ka_raise(c->prov, KA_R_NO_KEY_SET, "a pipeline init needs the key");
        return 0;
    }
    if (c->pipes == NULL && (c->pipes = OPENSSL_zalloc(sizeof(*c->pipes))) == NULL) {
        ka_raise(c->prov, KA_R_MALLOC, NULL);
        return 0;
    }
    for (i = 0; i < KA_MAX_PIPES; i++)
        pipe_reset(&c->pipes->pipe[i]);
    for (i = 0; i < numpipes; i++)
        memcpy(c->pipes->pipe[i].iv, iv[i], ivlen);
    c->enc = enc;
    c->pipes->enc = enc;
    c->pipes->ivlen = ivlen;
    c->pipes->finished = 0;
    c->pipes->n = numpipes;
    return 1;
}

static KA_PIPES *check_common(KA_CTX *c, size_t numpipes, size_t *outl)
{
    KA_PIPES *ps = c->pipes;

    if (!c->pipeline || ps == NULL || ps->n == 0) {
        ka_raise(c->prov, KA_R_NOT_INITIALISED, "no successful pipeline init on this context");
        return NULL;
    }
    if (numpipes != ps->n) {
        /* OpenSSL 3.5 passes 0 when EVP_CipherPipeline*Init reused a context without a reset. */
        ka_raise(c->prov, KA_R_NUMPIPES, "%zu pipes given, %zu at init%s", numpipes, ps->n,
                 numpipes == 0 ? " (reset a used EVP_CIPHER_CTX before its pipeline init)" : "");
        return NULL;
    }
    if (ps->finished) {
        ka_raise(c->prov, KA_R_FINISHED, "pipeline already finished: initialise it again");
        return NULL;
    }
    if (outl == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "the output length array is NULL");
        return NULL;
    }
    return ps;
}

KA_PIPES *ka_pipe_check_update(KA_CTX *c, size_t numpipes, unsigned char **out, size_t *outl,
                               const size_t *outsize, const unsigned char **in, const size_t *inl,
                               int aad_ok, size_t (*lag)(const KA_PIPES *ps, size_t i))
{
    KA_PIPES *ps = check_common(c, numpipes, outl);
    size_t i;

    if (ps == NULL)
        return NULL;
    if (in == NULL || inl == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "the input %s array is NULL", in == NULL ? "buffer" : "length");
        return NULL;
    }
    if (out == NULL && !aad_ok) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "the output array is NULL (AAD exists only in GCM)");
        return NULL;
    }
    if (out != NULL && outsize == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "the output size array is NULL");
        return NULL;
    }
    for (i = 0; i < numpipes; i++) {
        if (inl[i] == 0)
            continue;
        if (in[i] == NULL || (out != NULL && out[i] == NULL)) {
            ka_raise(c->prov, KA_R_NULL_BUFFER, "pipe %zu: %s buffer is NULL", i,
                     in[i] == NULL ? "input" : "output");
            return NULL;
        }
        if (out != NULL && in[i] != out[i] && (lag == NULL || out[i] + lag(ps, i) != in[i])
            && (uintptr_t)out[i] < (uintptr_t)in[i] + inl[i]
            && (uintptr_t)in[i] < (uintptr_t)out[i] + inl[i]) {
            ka_raise(c->prov, KA_R_OVERLAP, "pipe %zu: input and output overlap without being the same buffer", i);
            return NULL;
        }
    }
    return ps;
}

KA_PIPES *ka_pipe_check_final(KA_CTX *c, size_t numpipes, unsigned char **out, size_t *outl,
                              const size_t *outsize)
{
    KA_PIPES *ps = check_common(c, numpipes, outl);

    if (ps == NULL)
        return NULL;
    if (out == NULL || outsize == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "the output %s array is NULL", out == NULL ? "buffer" : "size");
        return NULL;
    }
    return ps;
}

int ka_pipe_tag_param(const KA_CTX *c, const OSSL_PARAM *p, unsigned char ***tags, size_t *taglen)
{
    const KA_PIPES *ps = c->pipes;
    size_t i;

    if (!c->pipeline || ps == NULL || ps->n == 0) {
        ka_raise(c->prov, KA_R_NOT_INITIALISED, "%s needs a pipeline init", p->key);
        return 0;
    }
    /* The param carries a pointer to the caller's array of tag pointers. */
    if (p->data_type != OSSL_PARAM_OCTET_PTR || p->data == NULL
        || (*tags = *(unsigned char ***)p->data) == NULL) {
        ka_raise(c->prov, KA_R_NULL_BUFFER, "%s: an octet pointer to an array of %zu tag pointers expected",
                 p->key, ps->n);
        return 0;
    }
    *taglen = p->data_size;
    if (*taglen == 0 || *taglen > KA_PIPE_TAG) {
        ka_raise(c->prov, KA_R_INVALID_TAG_LENGTH, "%zu bytes (1 to 16 allowed)", *taglen);
        return 0;
    }
    for (i = 0; i < ps->n; i++)
        if ((*tags)[i] == NULL) {
            ka_raise(c->prov, KA_R_NULL_BUFFER, "pipe %zu: tag buffer is NULL", i);
            return 0;
        }
    return 1;
}

unsigned char *ka_pipe_scratch(const KA_CTX *c, size_t len)
{
    unsigned char *s = OPENSSL_malloc(len > 0 ? len : 1);

    if (s == NULL)
        ka_raise(c->prov, KA_R_MALLOC, NULL);
    return s;
}

int ka_generic_pipe_einit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[])
{
    KA_GENERIC_CTX *g = vctx;

    return ka_pipe_init(&g->base, key, keylen, numpipes, iv, ivlen, KAIO_BLOCK, KAIO_BLOCK, 1)
        && ka_generic_set_ctx_params(g, params);
}

int ka_generic_pipe_dinit(void *vctx, const unsigned char *key, size_t keylen, size_t numpipes,
                          const unsigned char **iv, size_t ivlen, const OSSL_PARAM params[])
{
    KA_GENERIC_CTX *g = vctx;

    return ka_pipe_init(&g->base, key, keylen, numpipes, iv, ivlen, KAIO_BLOCK, KAIO_BLOCK, 0)
        && ka_generic_set_ctx_params(g, params);
}
