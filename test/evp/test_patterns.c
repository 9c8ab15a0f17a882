/* EVP usage patterns beyond init/update/final: split and repeated inits, one-shot
 * EVP_Cipher, ctx copies mid-stream, CTR resuming mid-block, the TLS 1.3 GCM record
 * pattern, calls after final. Each pattern runs on both providers; traces must match. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evputil.h"

#define N 700

typedef struct {
    const char *cipher;
    int mode, enc;
    unsigned char key[32], iv[16], iv2[16], aad[64];
    size_t ivlen, aadlen, len;
    unsigned char pt[N], in1[N + 32], in2[N + 32], tag1[16], tag2[16];
    size_t len1, len2; /* input lengths for message 1 (key, iv) and 2 (key, iv2) */
} pdata;

typedef void (*pattern_fn)(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t);

static unsigned char scratch[4 * N];

/* Recording wrappers: every call's result goes into the trace. */
static void upd(ev_trace *t, EVP_CIPHER_CTX *ctx, const unsigned char *in, size_t len, const char *lbl)
{
    int outl = -7, ret;

    memset(scratch, 0, len + 32);
    ret = EVP_CipherUpdate(ctx, scratch, &outl, in, (int)len);
    ev_add(t, ret, ret > 0, outl, scratch, ret > 0 && outl > 0 ? (size_t)outl : 0, "%s update %zu",
           lbl, len);
}

static void aad(ev_trace *t, EVP_CIPHER_CTX *ctx, const unsigned char *in, size_t len, const char *lbl)
{
    int outl = -7, ret = EVP_CipherUpdate(ctx, NULL, &outl, in, (int)len);

    ev_add(t, ret, ret > 0, outl, NULL, 0, "%s aad %zu", lbl, len);
}

static void fin(ev_trace *t, EVP_CIPHER_CTX *ctx, const char *lbl)
{
    int outl = -7, ret;

    memset(scratch, 0, 32);
    ret = EVP_CipherFinal_ex(ctx, scratch, &outl);
    ev_add(t, ret, ret > 0, outl, scratch, ret > 0 && outl > 0 ? (size_t)outl : 0, "%s final", lbl);
}

static void tag_get(ev_trace *t, EVP_CIPHER_CTX *ctx, const char *lbl)
{
    unsigned char tag[16] = {0};
    int ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);

    ev_add(t, ret, ret > 0, 0, tag, 16, "%s get tag", lbl);
}

static void tag_set(ev_trace *t, EVP_CIPHER_CTX *ctx, const unsigned char *tag, const char *lbl)
{
    int ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag);

    ev_add(t, ret, ret > 0, 0, NULL, 0, "%s set tag", lbl);
}

static void init(ev_trace *t, EVP_CIPHER_CTX *ctx, const EVP_CIPHER *c, const unsigned char *key,
                 const unsigned char *iv, int enc, const OSSL_PARAM *p, const char *lbl)
{
    int ret = EVP_CipherInit_ex2(ctx, c, key, iv, enc, p);

    ev_add(t, ret, ret > 0, 0, NULL, 0, "%s init", lbl);
}

/* The whole of message 1 after key and IV are set: (tag) aad data final (tag). */
static void body(ev_trace *t, EVP_CIPHER_CTX *ctx, const pdata *d, const unsigned char *in,
                 size_t len, const unsigned char *tag, const char *lbl)
{
    if (d->mode == EV_GCM && !d->enc)
        tag_set(t, ctx, tag, lbl);
    if (d->mode == EV_GCM)
        aad(t, ctx, d->aad, d->aadlen, lbl);
    upd(t, ctx, in, len / 3, lbl);
    upd(t, ctx, in + len / 3, len - len / 3, lbl);
    fin(t, ctx, lbl);
    if (d->mode == EV_GCM && d->enc)
        tag_get(t, ctx, lbl);
}

static EVP_CIPHER_CTX *newctx(void)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

static void p_key_then_iv(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();

    init(t, ctx, ev_cipher(lc, d->cipher), NULL, NULL, d->enc, NULL, "cipher");
    init(t, ctx, NULL, d->key, NULL, -1, NULL, "key");
    init(t, ctx, NULL, NULL, d->iv, -1, NULL, "iv");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1");
    EVP_CIPHER_CTX_free(ctx);
}

static void p_iv_then_key(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();

    init(t, ctx, ev_cipher(lc, d->cipher), NULL, d->iv, d->enc, NULL, "cipher+iv");
    init(t, ctx, NULL, d->key, NULL, -1, NULL, "key");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1");
    EVP_CIPHER_CTX_free(ctx);
}

/* Legacy-style EVP_CipherInit_ex with everything, and with the direction set late. */
static void p_init_ex(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();
    int ret = EVP_CipherInit_ex(ctx, ev_cipher(lc, d->cipher), NULL, NULL, NULL, -1);

    ev_add(t, ret, ret > 0, 0, NULL, 0, "init_ex cipher, no direction");
    ret = EVP_CipherInit_ex(ctx, NULL, NULL, d->key, d->iv, d->enc);
    ev_add(t, ret, ret > 0, 0, NULL, 0, "init_ex key iv");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1");
    EVP_CIPHER_CTX_free(ctx);
}

static void p_reinit_new_iv(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();

    init(t, ctx, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, NULL, "key+iv");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1");
    init(t, ctx, NULL, NULL, d->iv2, -1, NULL, "iv2");
    body(t, ctx, d, d->in2, d->len2, d->tag2, "m2");
    /* and back to the first IV, with the cipher given again */
    init(t, ctx, ev_cipher(lc, d->cipher), NULL, d->iv, -1, NULL, "cipher+iv1");
    init(t, ctx, NULL, d->key, NULL, -1, NULL, "key again");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1 again");
    EVP_CIPHER_CTX_free(ctx);
}

/* Re-init with neither key nor IV after a partial message: restarts the stream. */
static void p_reinit_null(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();

    init(t, ctx, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, NULL, "key+iv");
    if (d->mode == EV_GCM)
        aad(t, ctx, d->aad, 5, "partial");
    upd(t, ctx, d->in1, 37, "partial");
    init(t, ctx, NULL, NULL, NULL, -1, NULL, "null/null");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1 after restart");
    init(t, ctx, NULL, NULL, NULL, -1, NULL, "null/null after final");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1 again");
    EVP_CIPHER_CTX_free(ctx);
}

/* EVP_CipherInit_ex2 carrying params with the key and IV. */
static void p_init_params(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();
    unsigned int pad = 0;
    size_t keylen = ev_keylen(d->cipher), ivlen = 16, taglen = 16;
    OSSL_PARAM p[4];
    size_t k = 0;

    p[k++] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_KEYLEN, &keylen);
    if (d->mode == EV_CBC)
        p[k++] = OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_PADDING, &pad);
    if (d->mode == EV_GCM)
        p[k++] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, &taglen);
    p[k] = OSSL_PARAM_construct_end();
    init(t, ctx, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, p, "with params");
    /* CBC without padding: only whole blocks */
    body(t, ctx, d, d->in1, d->mode == EV_CBC ? d->len1 / 16 * 16 : d->len1, d->tag1, "m1");
    if (d->mode == EV_GCM) {
        /* an IV length given in the same call as the IV (applies after the IV) */
        p[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_IVLEN, &ivlen);
        p[1] = OSSL_PARAM_construct_end();
        init(t, ctx, NULL, d->key, d->iv, -1, p, "iv with ivlen 16");
        body(t, ctx, d, d->in1, d->len1, d->tag1, "m1 ivlen16");
        init(t, ctx, NULL, NULL, d->iv, -1, NULL, "iv after ivlen 16");
        body(t, ctx, d, d->in1, d->len1, d->tag1, "m1 ivlen16 again");
    }
    EVP_CIPHER_CTX_free(ctx);
}

/* EVP_Cipher one-shot calls. CBC/CTR: several calls chaining; GCM: AAD, data, final. */
static void p_evp_cipher(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();
    int ret;

    init(t, ctx, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, NULL, "key+iv");
    if (d->mode == EV_CBC) {
        EVP_CIPHER_CTX_set_padding(ctx, 0);
        ret = EVP_Cipher(ctx, scratch, d->in1, 32);
        ev_add(t, ret, ret > 0, ret, scratch, 32, "cipher 32");
        ret = EVP_Cipher(ctx, scratch, d->in1 + 32, 64);
        ev_add(t, ret, ret > 0, ret, scratch, 64, "cipher 64");
        ret = EVP_Cipher(ctx, scratch, d->in1 + 96, 16);
        ev_add(t, ret, ret > 0, ret, scratch, 16, "cipher 16");
    } else if (d->mode == EV_CTR) {
        ret = EVP_Cipher(ctx, scratch, d->in1, 33);
        ev_add(t, ret, ret > 0, ret, scratch, 33, "cipher 33");
        ret = EVP_Cipher(ctx, scratch, d->in1 + 33, 100);
        ev_add(t, ret, ret > 0, ret, scratch, 100, "cipher 100");
        ret = EVP_Cipher(ctx, scratch, d->in1 + 133, 0);
        ev_add(t, ret, ret >= 0, ret, NULL, 0, "cipher 0");
        ret = EVP_Cipher(ctx, scratch, d->in1 + 133, 7);
        ev_add(t, ret, ret > 0, ret, scratch, 7, "cipher 7");
    } else {
        if (!d->enc) {
            ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)d->tag1);
            ev_add(t, ret, ret > 0, 0, NULL, 0, "set tag");
        }
        ret = EVP_Cipher(ctx, NULL, d->aad, (unsigned int)d->aadlen);
        ev_add(t, ret, ret >= 0, ret, NULL, 0, "cipher aad");
        memset(scratch, 0, d->len1);
        ret = EVP_Cipher(ctx, scratch, d->in1, (unsigned int)d->len1);
        ev_add(t, ret, ret >= 0, ret, scratch, d->len1, "cipher data");
        ret = EVP_Cipher(ctx, NULL, NULL, 0);
        ev_add(t, ret, ret >= 0, ret, NULL, 0, "cipher final");
        if (d->enc)
            tag_get(t, ctx, "after EVP_Cipher");
    }
    EVP_CIPHER_CTX_free(ctx);
}

/* Copy mid-stream and continue both: CTR mid-block, CBC with a partial block
 * buffered, GCM after AAD and after some data. */
static void p_copy(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *a = newctx(), *b;
    size_t at;
    int ret, stage;

    for (stage = 0; stage < 2; stage++) {
        init(t, a, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, NULL, "key+iv");
        if (d->mode == EV_GCM) {
            if (!d->enc)
                tag_set(t, a, d->tag1, "a");
            aad(t, a, d->aad, d->aadlen, "a");
        }
        at = stage == 0 && d->mode == EV_GCM ? 0 : 37; /* GCM stage 0: right after AAD */
        if (at > 0)
            upd(t, a, d->in1, at, "a before copy");
        b = newctx();
        ret = EVP_CIPHER_CTX_copy(b, a);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "copy");
        /* both continue, with different chunkings */
        upd(t, a, d->in1 + at, 5, "a");
        upd(t, b, d->in1 + at, d->len1 - at, "b");
        upd(t, a, d->in1 + at + 5, d->len1 - at - 5, "a");
        fin(t, a, "a");
        fin(t, b, "b");
        if (d->mode == EV_GCM && d->enc) {
            tag_get(t, a, "a");
            tag_get(t, b, "b");
        }
        EVP_CIPHER_CTX_free(b);
    }
    EVP_CIPHER_CTX_free(a);
}

/* CTR: many small updates crossing block boundaries, "num" read after each. */
static void p_ctr_num(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();
    static const size_t steps[] = {1, 3, 5, 7, 0, 16, 17, 31, 1, 15, 2, 64, 9};
    size_t i, pos = 0;

    init(t, ctx, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, NULL, "key+iv");
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        unsigned int num = 99;
        int ret = EVP_CIPHER_CTX_get_num(ctx);

        upd(t, ctx, d->in1 + pos, steps[i], "step");
        pos += steps[i];
        ret = EVP_CIPHER_CTX_get_num(ctx);
        ev_add(t, 1, 1, ret, NULL, 0, "get_num");
        {
            OSSL_PARAM p[2] = {OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_NUM, &num),
                               OSSL_PARAM_construct_end()};

            ret = EVP_CIPHER_CTX_get_params(ctx, p);
            ev_add(t, ret, ret > 0, num, NULL, 0, "num param");
        }
    }
    fin(t, ctx, "end");
    EVP_CIPHER_CTX_free(ctx);
}

/* TLS 1.3 record layer: key once, then per record IV-only init, (tag), 5-byte AAD,
 * one data update, final, (tag). A bad record in the middle must not poison the next. */
static void p_tls13(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();
    int rec;

    init(t, ctx, ev_cipher(lc, d->cipher), d->key, NULL, d->enc, NULL, "key");
    for (rec = 0; rec < 4; rec++) {
        const unsigned char *iv = rec & 1 ? d->iv2 : d->iv;
        const unsigned char *in = rec & 1 ? d->in2 : d->in1;
        size_t len = rec & 1 ? d->len2 : d->len1;
        unsigned char tag[16];

        memcpy(tag, rec & 1 ? d->tag2 : d->tag1, 16);
        if (rec == 2)
            tag[3] ^= 1; /* decrypting: record 2 fails authentication */
        init(t, ctx, NULL, NULL, iv, -1, NULL, "record iv");
        if (!d->enc)
            tag_set(t, ctx, tag, "record");
        aad(t, ctx, d->aad, d->aadlen, "record");
        upd(t, ctx, in, len, "record");
        fin(t, ctx, "record");
        if (d->enc)
            tag_get(t, ctx, "record");
    }
    EVP_CIPHER_CTX_free(ctx);
}

/* Calls after final: update, final again, and (GCM) tag read twice. */
static void p_after_final(OSSL_LIB_CTX *lc, const pdata *d, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = newctx();

    init(t, ctx, ev_cipher(lc, d->cipher), d->key, d->iv, d->enc, NULL, "key+iv");
    body(t, ctx, d, d->in1, d->len1, d->tag1, "m1");
    fin(t, ctx, "second");
    if (d->mode == EV_GCM && d->enc)
        tag_get(t, ctx, "second");
    upd(t, ctx, d->in1, 20, "after final");
    fin(t, ctx, "after update after final");
    EVP_CIPHER_CTX_free(ctx);
}

/* Reference one-shot: how the pattern inputs for decryption are made. */
static size_t seal(const pdata *d, const unsigned char *iv, const unsigned char *in, size_t len,
                   unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = newctx();
    int l1 = 0, l2 = 0;

    ck_assert(EVP_CipherInit_ex2(ctx, ev_cipher(ev_ref(), d->cipher), d->key, iv, 1, NULL));
    if (d->mode == EV_GCM)
        ck_assert(EVP_CipherUpdate(ctx, NULL, &l1, d->aad, (int)d->aadlen));
    ck_assert(EVP_CipherUpdate(ctx, out, &l1, in, (int)len));
    ck_assert(EVP_CipherFinal_ex(ctx, out + l1, &l2));
    if (d->mode == EV_GCM)
        ck_assert(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0);
    EVP_CIPHER_CTX_free(ctx);
    return (size_t)(l1 + l2);
}

static void make_data(pdata *d, const char *cipher, int enc, uint64_t seed)
{
    ev_rng r = {seed};

    memset(d, 0, sizeof(*d));
    d->cipher = cipher;
    d->mode = ev_mode(cipher);
    d->enc = enc;
    ev_bytes(&r, d->key, sizeof(d->key));
    ev_bytes(&r, d->iv, sizeof(d->iv));
    ev_bytes(&r, d->iv2, sizeof(d->iv2));
    ev_bytes(&r, d->aad, sizeof(d->aad));
    ev_bytes(&r, d->pt, sizeof(d->pt));
    d->aadlen = 13 + ev_below(&r, 40);
    d->len = 200 + ev_below(&r, 300); /* > 133+7 for the EVP_Cipher pattern */
    if (enc) {
        memcpy(d->in1, d->pt, d->len);
        memcpy(d->in2, d->pt, d->len);
        d->len1 = d->len2 = d->len;
    } else {
        d->len1 = seal(d, d->iv, d->pt, d->len, d->in1, d->tag1);
        d->len2 = seal(d, d->iv2, d->pt, d->len, d->in2, d->tag2);
    }
}

static const struct {
    const char *name;
    pattern_fn fn;
    int modes; /* bit per EV_ mode */
} patterns[] = {
    {"key then iv", p_key_then_iv, 14},
    {"iv then key", p_iv_then_key, 14},
    {"EVP_CipherInit_ex", p_init_ex, 14},
    {"reinit new iv", p_reinit_new_iv, 14},
    {"reinit null/null", p_reinit_null, 14},
    {"init_ex2 params", p_init_params, 14},
    {"EVP_Cipher", p_evp_cipher, 14},
    {"copy mid-stream", p_copy, 14},
    {"CTR num", p_ctr_num, 1 << EV_CTR},
    {"TLS 1.3 records", p_tls13, 1 << EV_GCM},
    {"after final", p_after_final, 14},
};
#define NPAT (sizeof(patterns) / sizeof(patterns[0]))

START_TEST(all_patterns)
{
    const char *cipher = tu_ciphers[_i];
    static pdata d;
    size_t k;
    int enc, bad = 0;

    for (k = 0; k < NPAT; k++) {
        if (!(patterns[k].modes & (1 << ev_mode(cipher))))
            continue;
        for (enc = 0; enc <= 1; enc++) {
            ev_trace te = {0}, tg = {0};
            char desc[256];
            uint64_t seed = ev_case_seed((unsigned)(k * 2 + (size_t)enc));

            make_data(&d, cipher, enc, seed);
            tg.ours = 1;
            patterns[k].fn(ev_ref(), &d, &te);
            patterns[k].fn(ev_ours(), &d, &tg);
            snprintf(desc, sizeof(desc), "%s %s pattern '%s' (len %zu, aad %zu, data seed 0x%016llx)",
                     cipher, enc ? "encrypt" : "decrypt", patterns[k].name, d.len, d.aadlen,
                     (unsigned long long)seed);
            bad += !ev_trace_same(&te, &tg, desc);
            ev_trace_free(&te);
            ev_trace_free(&tg);
        }
    }
    ck_assert_msg(bad == 0, "%s: %d pattern(s) differ, see stderr", cipher, bad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evp_patterns");
    TCase *tc = ev_tcase("patterns");

    tcase_add_loop_test(tc, all_patterns, 0, 9);
    suite_add_tcase(s, tc);
    return ev_run(s);
}
