/*
 * The cipher pipeline API (OpenSSL 3.5 EVP_CipherPipeline*) through kcapi-aio,
 * differential against each record run alone through the default provider's
 * ordinary EVP calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "pipeutil.h"

enum { MULTI = 1, TAG_AFTER = 2, INPLACE = 4, NOPAD = 8, SAME_LEN = 16 };

struct pcase {
    int ci, enc, flags;
    size_t n, ivlen, taglen;
    long bad;                       /* GCM decrypt: pipe whose tag is wrong, -1 none */
    size_t fixed_len;               /* SAME_LEN: every pipe's length */
};

struct pipe {
    unsigned char iv[128], aad[64], tag[16], reftag[16];
    size_t plen, len, aadlen, cap, explen;
    unsigned char *pt, *ct;         /* plaintext, reference ciphertext */
    unsigned char *in, *out;        /* what the pipeline reads and writes */
    unsigned char *exp;             /* expected output */
    int expok;
};

static size_t rand_len(const struct pcase *pc)
{
    size_t l = pc->flags & SAME_LEN ? pc->fixed_len : tu_rand_below(4) == 0 ? tu_rand_below(20) : tu_rand_below(300);

    if (pu_is_cbc(pc->ci) && (pc->flags & NOPAD))
        l -= l % 16;
    return l;
}

/* Runs one pipeline and checks every pipe against its reference. */
static void run_case(const struct pcase *pc)
{
    EVP_CIPHER *c = tu_fetch(tu_ours(), tu_ciphers[pc->ci]);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    struct pipe p[PU_MAX];
    unsigned char key[32], *ivs[PU_MAX], *outp[PU_MAX], *tags[PU_MAX];
    const unsigned char *inp[PU_MAX];
    size_t inl[PU_MAX], outl[PU_MAX], outsize[PU_MAX], done_in[PU_MAX], done_out[PU_MAX];
    size_t i, n = pc->n, chunks = pc->flags & MULTI ? 3 : 1, k, taglen = pc->taglen;
    int gcm = pu_is_gcm(pc->ci), pad = !(pc->flags & NOPAD), ok;
    void *tagarray = tags;
    OSSL_PARAM tp[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
    char what[160];

    snprintf(what, sizeof(what), "%s %s n=%zu flags=%d ivlen=%zu bad=%ld", tu_ciphers[pc->ci],
             pc->enc ? "enc" : "dec", n, pc->flags, pc->ivlen, pc->bad);
    ck_assert_ptr_nonnull(ctx);
    tu_rand_bytes(key, sizeof(key));
    for (i = 0; i < n; i++) {
        struct pipe *q = &p[i];
        size_t reflen;

        memset(q, 0, sizeof(*q));
        q->plen = q->len = rand_len(pc);
        q->aadlen = gcm ? tu_rand_below(3) == 0 ? 0 : tu_rand_below(64) : 0;
        tu_rand_bytes(q->iv, sizeof(q->iv));
        tu_rand_bytes(q->aad, sizeof(q->aad));
        q->pt = pu_alloc(q->plen + 16);
        q->ct = pu_alloc(q->plen + 16);
        tu_rand_bytes(q->pt, q->len);
        ck_assert_msg(pu_ref(pc->ci, 1, pad, key, q->iv, pc->ivlen, q->aad, q->aadlen, q->pt, q->len,
                             q->ct, &reflen, q->reftag, 16), "%s: reference: %s", what, pu_errors());
        q->cap = q->len + 16;
        q->out = pu_alloc(q->cap);
        memset(q->out, 0xEE, q->cap);
        q->expok = 1;
        if (pc->enc) {
            q->exp = q->ct;
            q->explen = reflen;
            q->in = pc->flags & INPLACE ? q->out : q->pt;
            if (q->in == q->out)
                memcpy(q->out, q->pt, q->len);
        } else {
            /* Decrypt what the default provider made; the expectation is its own decrypt. */
            unsigned char *ref = pu_alloc(reflen + 16);
            size_t l2;

            memcpy(q->tag, q->reftag, 16);
            if ((long)i == pc->bad)
                q->tag[tu_rand_below(taglen)] ^= 1;
            q->expok = pu_ref(pc->ci, 0, pad, key, q->iv, pc->ivlen, q->aad, q->aadlen, q->ct, reflen,
                              ref, &l2, q->tag, taglen);
            ERR_clear_error();
            q->exp = q->pt;
            q->explen = q->len;
            if (q->expok)
                ck_assert_msg(tu_same(what, ref, l2, q->pt, q->len), "%s: reference decrypt", what);
            pu_free(ref, reflen + 16);
            q->len = reflen;
            q->in = pc->flags & INPLACE ? q->out : q->ct;
            if (q->in == q->out)
                memcpy(q->out, q->ct, reflen);
        }
        ivs[i] = q->iv;
        tags[i] = q->tag;
        done_in[i] = done_out[i] = 0;
    }

    ok = pc->enc ? EVP_CipherPipelineEncryptInit(ctx, c, key, pu_keylen(pc->ci), n,
                                                 (const unsigned char **)ivs, pc->ivlen)
                 : EVP_CipherPipelineDecryptInit(ctx, c, key, pu_keylen(pc->ci), n,
                                                 (const unsigned char **)ivs, pc->ivlen);
    ck_assert_msg(ok, "%s: init: %s", what, pu_errors());
    if (!pad)
        ck_assert(EVP_CIPHER_CTX_set_padding(ctx, 0));
    if (gcm) {
        /* AAD, in two updates when MULTI. */
        for (k = 0; k < chunks && k < 2; k++) {
            for (i = 0; i < n; i++) {
                size_t half = p[i].aadlen / 2;

                inp[i] = p[i].aad + (k == 0 ? 0 : half);
                inl[i] = chunks == 1 ? p[i].aadlen : k == 0 ? half : p[i].aadlen - half;
            }
            ck_assert_msg(EVP_CipherPipelineUpdate(ctx, NULL, outl, NULL, inp, inl), "%s: AAD: %s", what,
                          pu_errors());
        }
        tp[0] = OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, &tagarray, taglen);
        if (!pc->enc && !(pc->flags & TAG_AFTER))
            ck_assert_msg(EVP_CIPHER_CTX_set_params(ctx, tp), "%s: set tags: %s", what, pu_errors());
    }
    for (k = 0; k < chunks; k++) {
        for (i = 0; i < n; i++) {
            size_t left = p[i].len - done_in[i];

            inl[i] = k + 1 == chunks ? left : tu_rand_below(left + 1);
            inp[i] = p[i].in + done_in[i];
            outp[i] = p[i].out + done_out[i];
            outsize[i] = p[i].cap - done_out[i];
        }
        ck_assert_msg(EVP_CipherPipelineUpdate(ctx, outp, outl, outsize, inp, inl), "%s: update %zu: %s",
                      what, k, pu_errors());
        for (i = 0; i < n; i++) {
            done_in[i] += inl[i];
            ck_assert_msg(outl[i] <= outsize[i], "%s: pipe %zu reports %zu bytes", what, i, outl[i]);
            done_out[i] += outl[i];
        }
    }
    if (gcm && !pc->enc && (pc->flags & TAG_AFTER))
        ck_assert_msg(EVP_CIPHER_CTX_set_params(ctx, tp), "%s: set tags: %s", what, pu_errors());
    for (i = 0; i < n; i++) {
        outp[i] = p[i].out + done_out[i];
        outsize[i] = p[i].cap - done_out[i];
    }
    ok = EVP_CipherPipelineFinal(ctx, outp, outl, outsize);
    if (pc->bad >= 0) {
        char needle[32];
        const char *errs;

        ck_assert_msg(!ok, "%s: final succeeded with a bad tag", what);
        snprintf(needle, sizeof(needle), "pipe %ld", pc->bad);
        errs = pu_errors();
        ck_assert_msg(strstr(errs, needle) != NULL, "%s: error does not name the pipe: %s", what, errs);
    } else {
        ck_assert_msg(ok, "%s: final: %s", what, pu_errors());
    }
    for (i = 0; i < n; i++) {
        struct pipe *q = &p[i];

        done_out[i] += outl[i];
        if (!q->expok) {
            size_t j;

            if (pc->flags & (TAG_AFTER | MULTI))
                continue; /* the tag could not be checked before the data was released (as OpenSSL) */
            ck_assert_msg(done_out[i] == 0, "%s: pipe %zu released %zu bytes of a bad message", what, i,
                          done_out[i]);
            for (j = 0; j < q->len; j++)
                ck_assert_msg(q->len == 0 || q->out[j] == 0 || q->out[j] == 0xEE,
                              "%s: pipe %zu: plaintext of a bad message left in the output", what, i);
            if (q->len >= 16)
                ck_assert_msg(memcmp(q->out, q->pt, 16) != 0, "%s: pipe %zu: plaintext released", what, i);
            continue;
        }
        ck_assert_msg(tu_same(what, q->out, done_out[i], q->exp, q->explen), "%s: pipe %zu output", what, i);
    }
    if (gcm && pc->enc) {
        unsigned char got[PU_MAX][16];

        for (i = 0; i < n; i++)
            tags[i] = got[i];
        ck_assert_msg(EVP_CIPHER_CTX_get_params(ctx, tp), "%s: get tags: %s", what, pu_errors());
        for (i = 0; i < n; i++)
            ck_assert_msg(memcmp(got[i], p[i].reftag, taglen) == 0, "%s: pipe %zu tag", what, i);
    }
    for (i = 0; i < n; i++) {
        pu_free(p[i].pt, p[i].plen + 16);
        pu_free(p[i].ct, p[i].plen + 16);
        pu_free(p[i].out, p[i].cap);
    }
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
}

static struct pcase mk(int ci, int enc, size_t n, int flags)
{
    struct pcase pc = { ci, enc, flags, n, pu_is_gcm(ci) ? 12 : 16, 16, -1, 0 };

    return pc;
}

START_TEST(can_pipeline)
{
    EVP_CIPHER *c = tu_fetch(tu_ours(), tu_ciphers[_i]);

    ck_assert_msg(EVP_CIPHER_can_pipeline(c, 1) && EVP_CIPHER_can_pipeline(c, 0), "%s", tu_ciphers[_i]);
    EVP_CIPHER_free(c);
}
END_TEST

/* Every numpipes 1..32, both directions, random lengths (0 included), in place or not. */
START_TEST(differential)
{
    size_t n;
    int enc;

    for (enc = 0; enc <= 1; enc++)
        for (n = 1; n <= PU_MAX; n++) {
            struct pcase pc = mk(_i, enc, n, tu_rand_below(2) ? INPLACE : 0);

            run_case(&pc);
        }
}
END_TEST

/* Several updates per pipeline: CBC partial blocks, CTR mid-block, GCM AAD and data split. */
START_TEST(multi_update)
{
    size_t n;
    int enc, inplace;

    for (enc = 0; enc <= 1; enc++)
        for (n = 1; n <= PU_MAX; n += 3) {
            inplace = tu_rand_below(2) ? INPLACE : 0;
            struct pcase pc = mk(_i, enc, n, MULTI | inplace);

            run_case(&pc);
        }
}
END_TEST

START_TEST(cbc_nopad)
{
    size_t n;
    int enc;

    for (enc = 0; enc <= 1; enc++)
        for (n = 1; n <= PU_MAX; n += 5) {
            struct pcase pc = mk(_i, enc, n, NOPAD | (n % 2 ? MULTI : 0));

            run_case(&pc);
        }
}
END_TEST

/* GCM: IV lengths the kernel can't take, short tags, tags set after the data. */
START_TEST(gcm_variants)
{
    static const size_t ivlens[] = { 1, 8, 12, 16, 60, 128 };
    size_t i;
    int ci = 6 + _i;

    for (i = 0; i < sizeof(ivlens) / sizeof(ivlens[0]); i++) {
        struct pcase e = mk(ci, 1, 1 + tu_rand_below(PU_MAX), 0), d = mk(ci, 0, 1 + tu_rand_below(PU_MAX), 0);

        e.ivlen = d.ivlen = ivlens[i];
        run_case(&e);
        run_case(&d);
    }
    for (i = 0; i < 4; i++) {
        struct pcase d = mk(ci, 0, 1 + tu_rand_below(PU_MAX), TAG_AFTER | (i % 2 ? MULTI : 0));
        struct pcase t = mk(ci, 0, 1 + tu_rand_below(PU_MAX), i % 2 ? MULTI : 0);
        struct pcase e = mk(ci, 1, 1 + tu_rand_below(PU_MAX), 0);

        t.taglen = 4 + 4 * i;
        e.taglen = 4 + 4 * i;
        run_case(&d);
        run_case(&t);
        run_case(&e);
    }
}
END_TEST

/* One bad tag among good pipes: that pipe fails (named), releases nothing; the others are right. */
START_TEST(gcm_bad_tag)
{
    size_t n;
    int ci = 6 + _i;

    for (n = 1; n <= PU_MAX; n += 2) {
        struct pcase pc = mk(ci, 0, n, tu_rand_below(2) ? INPLACE : 0);

        pc.bad = (long)tu_rand_below(n);
        run_case(&pc);
        pc.flags = TAG_AFTER;
        run_case(&pc);
        pc.flags = MULTI;
        run_case(&pc);
    }
}
END_TEST

/* ---- bad input: a clean failure with a reason, nothing written ---- */

struct bad {
    EVP_CIPHER *c;
    EVP_CIPHER_CTX *ctx;
    unsigned char key[32], iv[4][16], *ivs[4], *in[4], *out[4], *obuf[4];
    const unsigned char *inp[4];
    size_t inl[4], outl[4], outsize[4];
    int ci;
};

#define BADLEN 40

static void bad_setup(struct bad *b, int ci)
{
    size_t i;

    memset(b, 0, sizeof(*b));
    b->ci = ci;
    b->c = tu_fetch(tu_ours(), tu_ciphers[ci]);
    b->ctx = EVP_CIPHER_CTX_new();
    tu_rand_bytes(b->key, sizeof(b->key));
    for (i = 0; i < 4; i++) {
        tu_rand_bytes(b->iv[i], 16);
        b->ivs[i] = b->iv[i];
        b->in[i] = pu_alloc(BADLEN);
        b->out[i] = b->obuf[i] = pu_alloc(BADLEN + 16);
        tu_rand_bytes(b->in[i], BADLEN);
        memset(b->out[i], 0xEE, BADLEN + 16);
        b->inp[i] = b->in[i];
        b->inl[i] = BADLEN;
        b->outsize[i] = BADLEN + 16;
    }
}

static int bad_init(struct bad *b, size_t n)
{
    /* OpenSSL 3.5 loses numpipes when a used context is pipeline-initialised without a reset. */
    EVP_CIPHER_CTX_reset(b->ctx);
    return EVP_CipherPipelineEncryptInit(b->ctx, b->c, b->key, pu_keylen(b->ci), n,
                                         (const unsigned char **)b->ivs, pu_is_gcm(b->ci) ? 12 : 16);
}

/* The call failed, said why (expect: a word of the reason), and left every output untouched. */
static void bad_check(struct bad *b, int ret, const char *what, const char *expect)
{
    const char *errs;
    size_t i, j;

    ck_assert_msg(!ret, "%s %s: succeeded", tu_ciphers[b->ci], what);
    errs = pu_errors();
    ck_assert_msg(strstr(errs, expect) != NULL, "%s %s: reason \"%s\" expected, got: %s", tu_ciphers[b->ci],
                  what, expect, errs);
    for (i = 0; i < 4; i++) {
        ck_assert_msg(pu_canaries_ok(b->obuf[i], BADLEN + 16), "%s %s: canary", tu_ciphers[b->ci], what);
        for (j = 0; j < BADLEN + 16; j++)
            ck_assert_msg(b->obuf[i][j] == 0xEE, "%s %s: output %zu written", tu_ciphers[b->ci], what, i);
    }
}

static void bad_teardown(struct bad *b)
{
    size_t i;

    for (i = 0; i < 4; i++) {
        pu_free(b->in[i], BADLEN);
        pu_free(b->obuf[i], BADLEN + 16);
    }
    EVP_CIPHER_CTX_free(b->ctx);
    EVP_CIPHER_free(b->c);
}

START_TEST(bad_input)
{
    struct bad b;
    unsigned char *saved;
    int l;

    bad_setup(&b, _i);
    /* init */
    bad_check(&b, bad_init(&b, 0), "numpipes 0", "pipes");
    bad_check(&b, bad_init(&b, 33), "numpipes 33", "");
    bad_check(&b, EVP_CipherPipelineEncryptInit(b.ctx, b.c, b.key, pu_keylen(_i), 2, NULL, 16),
              "IV array NULL", "NULL");
    saved = b.ivs[1];
    b.ivs[1] = NULL;
    bad_check(&b, bad_init(&b, 2), "IV entry NULL", "pipe 1");
    b.ivs[1] = saved;
    bad_check(&b, EVP_CipherPipelineEncryptInit(b.ctx, b.c, b.key, pu_keylen(_i), 2,
                                                (const unsigned char **)b.ivs, pu_is_gcm(_i) ? 0 : 15),
              "ivlen", "IV length");
    bad_check(&b, EVP_CipherPipelineEncryptInit(b.ctx, b.c, b.key, pu_keylen(_i) - 1, 2,
                                                (const unsigned char **)b.ivs, pu_is_gcm(_i) ? 12 : 16),
              "keylen", "key length");
    /* update before any successful init */
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "update before init",
              "pipeline");
    /* a pipeline update on a context set up for ordinary calls */
    ck_assert(EVP_EncryptInit_ex2(b.ctx, b.c, b.key, b.iv[0], NULL));
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "pipeline after plain",
              "pipeline init");

    ck_assert_msg(bad_init(&b, 3), "%s", pu_errors());
    /* ordinary calls on a pipeline context */
    bad_check(&b, EVP_EncryptUpdate(b.ctx, b.out[0], &l, b.in[0], BADLEN), "plain update", "mixed");
    bad_check(&b, EVP_EncryptFinal_ex(b.ctx, b.out[0], &l), "plain final", "mixed");
    /* update arguments */
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, NULL, b.inl), "in NULL", "NULL");
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, NULL, b.inp, b.inl), "outsize NULL", "NULL");
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, NULL, b.outsize, b.inp, b.inl), "outl NULL", "");
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, NULL), "inl NULL", "");
    if (!pu_is_gcm(_i))
        bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, NULL, b.outl, b.outsize, b.inp, b.inl), "out NULL",
                  "NULL");
    b.inp[2] = NULL;
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "in[2] NULL",
              "pipe 2");
    b.inp[2] = b.in[2];
    saved = b.out[1];
    b.out[1] = NULL;
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "out[1] NULL",
              "pipe 1");
    b.out[1] = saved;
    b.outsize[2] = 16;
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "outsize[2] small",
              "pipe 2");
    b.outsize[2] = BADLEN + 16;
    /* in and out overlapping without being the same buffer */
    b.inp[0] = b.out[0] + 1;
    bad_check(&b, EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "overlap", "pipe 0");
    b.inp[0] = b.in[0];
    /* final arguments, once the data went through */
    if (pu_is_cbc(_i)) {
        unsigned char *fo[3];
        size_t fs[3] = { 15, 16, 16 }, i;

        ck_assert_msg(EVP_CipherPipelineUpdate(b.ctx, b.out, b.outl, b.outsize, b.inp, b.inl), "%s", pu_errors());
        for (i = 0; i < 3; i++) {
            fo[i] = b.out[i] + b.outl[i];
            b.outsize[i] = fs[i];
        }
        /* Final output room is checked before anything is written. */
        {
            unsigned char before[3][BADLEN + 16];

            for (i = 0; i < 3; i++)
                memcpy(before[i], b.out[i], BADLEN + 16);
            ck_assert(!EVP_CipherPipelineFinal(b.ctx, fo, b.outl, b.outsize));
            ck_assert_msg(strstr(pu_errors(), "pipe 0") != NULL, "final names the pipe");
            for (i = 0; i < 3; i++)
                ck_assert(memcmp(before[i], b.out[i], BADLEN + 16) == 0);
            ck_assert(!EVP_CipherPipelineFinal(b.ctx, NULL, b.outl, b.outsize));
            ck_assert(strstr(pu_errors(), "NULL") != NULL);
        }
    }
    bad_teardown(&b);
}
END_TEST

/* ---- one pipeline update of n pipes is one backend batch of n ops ---- */

START_TEST(counters)
{
    static const size_t ns[] = { 1, 2, 7, 32 };
    size_t t, i;
    int enc;
    char report[8192];
    OSSL_PARAM rp[] = { OSSL_PARAM_utf8_string("kcapi-aio-report", report, sizeof(report)),
                        OSSL_PARAM_END };
    OSSL_PROVIDER *prov = OSSL_PROVIDER_load(tu_ours(), "kcapi-aio");

    /* The report probes the kernel: its one self-test io_submit (a forked
     * test process probes anew) must not land inside a measured update. */
    ck_assert(prov != NULL && OSSL_PROVIDER_get_params(prov, rp));
    OSSL_PROVIDER_unload(prov);

    for (enc = 0; enc <= 1; enc++)
        for (t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
            size_t n = ns[t];
            EVP_CIPHER *c = tu_fetch(tu_ours(), tu_ciphers[_i]);
            EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
            unsigned char key[32], iv[PU_MAX][16], *ivs[PU_MAX], *out[PU_MAX], *tags[PU_MAX];
            unsigned char buf[PU_MAX][400], obuf[PU_MAX][400], tagbuf[PU_MAX][16];
            const unsigned char *in[PU_MAX];
            size_t inl[PU_MAX], outl[PU_MAX], outsize[PU_MAX];
            struct pu_counters a, b;
            void *ta = tags;
            OSSL_PARAM tp[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
            int gcm = pu_is_gcm(_i);

            tu_rand_bytes(key, sizeof(key));
            tu_rand_bytes(buf, sizeof(buf));
            tu_rand_bytes(tagbuf, sizeof(tagbuf));
            for (i = 0; i < n; i++) {
                tu_rand_bytes(iv[i], 16);
                ivs[i] = iv[i];
                tags[i] = tagbuf[i];
                in[i] = buf[i];
                out[i] = obuf[i];
                outsize[i] = sizeof(obuf[i]);
                inl[i] = 5 + tu_rand_below(11); /* first update: CBC buffers it all */
            }
            ck_assert(enc ? EVP_CipherPipelineEncryptInit(ctx, c, key, pu_keylen(_i), n, (const unsigned char **)ivs, gcm ? 12 : 16)
                          : EVP_CipherPipelineDecryptInit(ctx, c, key, pu_keylen(_i), n, (const unsigned char **)ivs, gcm ? 12 : 16));
            if (gcm) {
                ck_assert(EVP_CipherPipelineUpdate(ctx, NULL, outl, NULL, in, inl));   /* AAD: buffered */
                tp[0] = OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, &ta, 16);
                if (!enc)
                    ck_assert(EVP_CIPHER_CTX_set_params(ctx, tp));
            } else if (pu_is_cbc(_i)) {
                pu_counters(&a);
                ck_assert(EVP_CipherPipelineUpdate(ctx, out, outl, outsize, in, inl));
                pu_counters(&b);
                ck_assert_msg(b.batches == a.batches, "buffering update ran %llu batches",
                              (unsigned long long)(b.batches - a.batches));
                for (i = 0; i < n; i++)
                    in[i] += inl[i];
            }
            for (i = 0; i < n; i++)
                inl[i] = 40 + tu_rand_below(300);
            pu_counters(&a);
            ck_assert_msg(EVP_CipherPipelineUpdate(ctx, out, outl, outsize, in, inl), "%s", pu_errors());
            pu_counters(&b);
            ck_assert_msg(b.batches - a.batches == 1 && b.ops - a.ops == n,
                          "%s %s n=%zu: %llu batches, %llu ops (1 and %zu expected)", tu_ciphers[_i],
                          enc ? "enc" : "dec", n, (unsigned long long)(b.batches - a.batches),
                          (unsigned long long)(b.ops - a.ops), n);
            /* One io_submit per update; an injected short io_submit makes the engine resubmit the rest. */
            if (b.batches_aio > a.batches_aio)
                ck_assert_msg(getenv("KCAPI_AIO_FAULT") != NULL ? b.io_submit - a.io_submit >= 1
                                                               : b.io_submit - a.io_submit == 1,
                              "%llu io_submit calls", (unsigned long long)(b.io_submit - a.io_submit));
            ck_assert(b.kernel_ops - a.kernel_ops <= n);
            /* Depth (a process-wide maximum): an AIO batch of n separate kernel
             * operations has all n in flight at once; a sync-only process never
             * more than one. */
            if (b.batches_aio > a.batches_aio && b.kernel_ops - a.kernel_ops == n)
                ck_assert_msg(b.max_inflight >= n, "%s n=%zu via AIO: max_inflight %llu",
                              tu_ciphers[_i], n, (unsigned long long)b.max_inflight);
            if (getenv("KCAPI_AIO_BACKEND") != NULL && strcmp(getenv("KCAPI_AIO_BACKEND"), "sync") == 0)
                ck_assert_msg(b.max_inflight <= 1, "backend=sync: max_inflight %llu",
                              (unsigned long long)b.max_inflight);
            if (b.batches_sw > a.batches_sw)
                ck_assert(b.ops_sw - a.ops_sw == n);
            fprintf(stderr, "%s %s n=%zu: batches aio/sync/sw +%llu/+%llu/+%llu, ops +%llu, io_submit +%llu, kernel_ops +%llu, max_inflight %llu\n",
                    tu_ciphers[_i], enc ? "enc" : "dec", n, (unsigned long long)(b.batches_aio - a.batches_aio),
                    (unsigned long long)(b.batches_sync - a.batches_sync),
                    (unsigned long long)(b.batches_sw - a.batches_sw), (unsigned long long)(b.ops - a.ops),
                    (unsigned long long)(b.io_submit - a.io_submit),
                    (unsigned long long)(b.kernel_ops - a.kernel_ops), (unsigned long long)b.max_inflight);
            for (i = 0; i < n; i++) {
                out[i] += outl[i];
                outsize[i] -= outl[i];
            }
            /* Final: at most one batch (CBC's last blocks); GCM decryption then fails on random tags. */
            pu_counters(&a);
            {
                int ok = EVP_CipherPipelineFinal(ctx, out, outl, outsize);

                pu_counters(&b);
                ck_assert(ok || (gcm && !enc) || (pu_is_cbc(_i) && !enc));
                ERR_clear_error();
                ck_assert_msg(b.batches - a.batches <= 1, "final ran %llu batches",
                              (unsigned long long)(b.batches - a.batches));
            }
            EVP_CIPHER_CTX_free(ctx);
            EVP_CIPHER_free(c);
        }
}
END_TEST

/* A context can go back to ordinary calls after a pipeline, and a pipeline can be run twice. */
START_TEST(reinit)
{
    struct pcase pc = mk(_i, 1, 4, 0);
    EVP_CIPHER *c = tu_fetch(tu_ours(), tu_ciphers[_i]);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char key[32] = { 1 }, iv[16] = { 2 }, *ivs[1] = { iv }, in[48] = { 3 }, out[64], ref[64], tag[16];
    const unsigned char *inp[1] = { in };
    unsigned char *outp[1] = { out };
    size_t inl[1] = { sizeof(in) }, outl[1], outsize[1] = { sizeof(out) }, rl;
    int l1, l2;

    run_case(&pc);
    run_case(&pc);
    ck_assert(EVP_CipherPipelineEncryptInit(ctx, c, key, pu_keylen(_i), 1, (const unsigned char **)ivs,
                                            pu_is_gcm(_i) ? 12 : 16));
    ck_assert(EVP_CipherPipelineUpdate(ctx, outp, outl, outsize, inp, inl));
    ck_assert(EVP_EncryptInit_ex2(ctx, NULL, key, iv, NULL));
    ck_assert_msg(EVP_EncryptUpdate(ctx, out, &l1, in, sizeof(in)) && EVP_EncryptFinal_ex(ctx, out + l1, &l2),
                  "%s", pu_errors());
    ck_assert(pu_ref(_i, 1, 1, key, iv, pu_is_gcm(_i) ? 12 : 16, NULL, 0, in, sizeof(in), ref, &rl, tag, 16));
    ck_assert(tu_same("plain after pipeline", out, (size_t)(l1 + l2), ref, rl));
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    SRunner *sr;
    int failed;

    tu_seed();
    tcase_add_loop_test(tc, can_pipeline, 0, 9);
    tcase_add_loop_test(tc, differential, 0, 9);
    tcase_add_loop_test(tc, multi_update, 0, 9);
    tcase_add_loop_test(tc, cbc_nopad, 0, 3);
    tcase_add_loop_test(tc, gcm_variants, 0, 3);
    tcase_add_loop_test(tc, gcm_bad_tag, 0, 3);
    tcase_add_loop_test(tc, bad_input, 0, 9);
    tcase_add_loop_test(tc, counters, 0, 9);
    tcase_add_loop_test(tc, reinit, 0, 9);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
