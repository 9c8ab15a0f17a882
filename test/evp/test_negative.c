/* Misuse: every call that must fail fails in the provider under test as in the
 * default provider, leaves a readable reason on the error queue, and writes nothing
 * outside the caller's buffer. Inputs that would crash the default provider (NULL
 * buffers) are run on ours only. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/provider.h>

#include "evputil.h"

static unsigned char key[32], iv[16], data[256];

static void setup_data(unsigned idx)
{
    ev_rng r = {ev_case_seed(idx)};

    ev_bytes(&r, key, sizeof(key));
    ev_bytes(&r, iv, sizeof(iv));
    ev_bytes(&r, data, sizeof(data));
}

/* Assert a call failed in ours with a readable reason; clears the queue. */
static void must_fail(int ret, const char *what, const char *cipher)
{
    unsigned long e = ERR_peek_error();

    ck_assert_msg(ret <= 0, "%s %s: succeeded in %s, must fail", cipher, what, ev_ours_name());
    if (ev_strict_errors()) {
        ck_assert_msg(e != 0, "%s %s: failed with an empty error queue", cipher, what);
        ck_assert_msg(ERR_reason_error_string(e) != NULL, "%s %s: error %lx has no reason string",
                      cipher, what, e);
    }
    ERR_clear_error();
}

typedef void (*neg_fn)(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t);

/* Run on both, compare, then require that the step labelled 'must' failed in ours
 * (with a reason, checked by ev_trace_same for every failing step). */
static void differential(neg_fn fn, const char *cipher, const char *what, const char *must)
{
    ev_trace te = {0}, tg = {0};
    char desc[160];
    size_t i;

    tg.ours = 1;
    fn(ev_ref(), cipher, &te);
    fn(ev_ours(), cipher, &tg);
    snprintf(desc, sizeof(desc), "%s %s", cipher, what);
    ck_assert_msg(ev_trace_same(&te, &tg, desc), "%s", desc);
    for (i = 0; must != NULL && i < tg.n; i++)
        if (strcmp(tg.r[i].label, must) == 0)
            ck_assert_msg(tg.r[i].ret <= 0, "%s: step '%s' must fail", desc, must);
    ev_trace_free(&te);
    ev_trace_free(&tg);
}

static EVP_CIPHER_CTX *keyed(OSSL_LIB_CTX *lc, const char *cipher, int enc, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ret = EVP_CipherInit_ex2(ctx, ev_cipher(lc, cipher), key, iv, enc, NULL);

    ev_add(t, ret, ret > 0, 0, NULL, 0, "init");
    return ctx;
}

static void upd(ev_trace *t, EVP_CIPHER_CTX *ctx, const unsigned char *in, int len, const char *lbl)
{
    ev_buf b;
    int outl = -7, ret;

    ev_buf_init(&b, (size_t)len + 16, 3);
    ret = EVP_CipherUpdate(ctx, b.p, &outl, in, len);
    ev_add(t, ret, ret > 0, outl, b.p, ret > 0 && outl > 0 ? (size_t)outl : 0, "%s", lbl);
    ev_add(t, ev_buf_intact(&b), 1, 0, NULL, 0, "%s canaries", lbl);
    ev_buf_free(&b);
}

static void fin(ev_trace *t, EVP_CIPHER_CTX *ctx, const char *lbl)
{
    ev_buf b;
    int outl = -7, ret;

    ev_buf_init(&b, 16, 5);
    ret = EVP_CipherFinal_ex(ctx, b.p, &outl);
    ev_add(t, ret, ret > 0, outl, b.p, ret > 0 && outl > 0 ? (size_t)outl : 0, "%s", lbl);
    ev_add(t, ev_buf_intact(&b), 1, 0, NULL, 0, "%s canaries", lbl);
    ev_buf_free(&b);
}

static void n_keylen(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    static const int bad[] = {0, 15, 17, 31, 33, 64};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        size_t kl = (size_t)bad[i];
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_KEYLEN, &kl),
                           OSSL_PARAM_construct_end()};
        int ret = EVP_CipherInit_ex2(ctx, ev_cipher(lc, cipher), NULL, NULL, 1, NULL);

        ev_add(t, ret, ret > 0, 0, NULL, 0, "init");
        ret = EVP_CIPHER_CTX_set_key_length(ctx, bad[i]);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "wrong key length");
        ret = EVP_CipherInit_ex2(ctx, NULL, key, iv, 1, p);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "init with wrong keylen param");
        EVP_CIPHER_CTX_free(ctx);
    }
}

static void n_ivlen(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    static const size_t bad[] = {0, 8, 12, 15, 17, 32};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EVP_CIPHER_CTX *ctx = keyed(lc, cipher, 1, t);
        size_t v = bad[i];
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_IVLEN, &v),
                           OSSL_PARAM_construct_end()};
        int ret = EVP_CIPHER_CTX_set_params(ctx, p);

        ev_add(t, ret, ret > 0, EVP_CIPHER_CTX_get_iv_length(ctx), NULL, 0, "ivlen param %zu", v);
        ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)v, NULL);
        ev_add(t, ret, ret > 0, EVP_CIPHER_CTX_get_iv_length(ctx), NULL, 0, "ivlen ctrl %zu", v);
        upd(t, ctx, data, 32, "update");
        fin(t, ctx, "final");
        EVP_CIPHER_CTX_free(ctx);
    }
}

static void n_taglen(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    static const size_t bad[] = {0, 17, 32};
    size_t i;
    unsigned char tag[64] = {0};

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EVP_CIPHER_CTX *d = keyed(lc, cipher, 0, t), *e = keyed(lc, cipher, 1, t);
        int ret = EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, (int)bad[i], tag);

        ev_add(t, ret, ret > 0, 0, NULL, 0, "set tag");
        upd(t, e, data, 20, "enc update");
        fin(t, e, "enc final");
        ret = EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, (int)bad[i], tag);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "get tag");
        EVP_CIPHER_CTX_free(d);
        EVP_CIPHER_CTX_free(e);
    }
}

static void n_nokey(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    int enc;

    for (enc = 0; enc <= 1; enc++) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int ret = EVP_CipherInit_ex2(ctx, ev_cipher(lc, cipher), NULL, iv, enc, NULL);

        ev_add(t, ret, ret > 0, 0, NULL, 0, "init iv only");
        upd(t, ctx, data, 32, "update without key");
        fin(t, ctx, "final without key");
        EVP_CIPHER_CTX_free(ctx);
    }
}

/* GCM without an IV: decryption must fail; encryption makes a random IV in the
 * default provider, so only success and lengths are compared there. */
static void n_noiv(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    int enc;

    for (enc = 0; enc <= 1; enc++) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        unsigned char out[64];
        int outl = 0, ret = EVP_CipherInit_ex2(ctx, ev_cipher(lc, cipher), key, NULL, enc, NULL);

        ev_add(t, ret, ret > 0, 0, NULL, 0, "init key only");
        ret = EVP_CipherUpdate(ctx, NULL, &outl, data, 13);
        ev_add(t, ret, ret > 0, outl, NULL, 0, "aad without iv");
        ret = EVP_CipherUpdate(ctx, out, &outl, data, 32);
        ev_add(t, ret, ret > 0, outl, NULL, 0, enc ? "enc update without iv" : "dec update without iv");
        ret = EVP_CipherFinal_ex(ctx, out, &outl);
        ev_add(t, ret, ret > 0, outl, NULL, 0, "final without iv");
        EVP_CIPHER_CTX_free(ctx);
    }
}

/*
 * Three CBC ciphertext blocks whose last one decrypts to a final byte of 0,
 * which is never valid padding (random data would be valid 1 time in 256).
 */
static void bad_padding_blocks(const char *cipher, unsigned char buf[48])
{
    char ecb[16];
    EVP_CIPHER *c;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    unsigned char p3[16];
    int i, outl = 0;

    memcpy(buf, data, 48);
    snprintf(ecb, sizeof(ecb), "AES-%.3s-ECB", cipher + 4);
    c = tu_fetch(tu_ref(), ecb);
    for (i = 0; i < 16; i++)
        p3[i] = (unsigned char)(buf[32 + i] ^ buf[16 + i]);
    p3[15] = buf[31]; /* C3 = E(P3 ^ C2) with P3's last byte 0 */
    ck_assert(EVP_EncryptInit_ex2(x, c, key, NULL, NULL) && EVP_CIPHER_CTX_set_padding(x, 0)
              && EVP_EncryptUpdate(x, buf + 32, &outl, p3, 16) && outl == 16);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(c);
}

static void n_after_failed_final(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = keyed(lc, cipher, 0, t);
    unsigned char tag[16] = {0}, blocks[48];
    int ret;

    if (ev_mode(cipher) == EV_GCM) {
        ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag); /* wrong tag */
        ev_add(t, ret, ret > 0, 0, NULL, 0, "set tag");
    }
    if (ev_mode(cipher) == EV_CBC)
        bad_padding_blocks(cipher, blocks);
    else
        memcpy(blocks, data, sizeof(blocks));
    upd(t, ctx, blocks, 48, "update");
    fin(t, ctx, "failing final"); /* CBC: bad padding; GCM: wrong tag */
    upd(t, ctx, data, 32, "update after failed final");
    fin(t, ctx, "final after failed final");
    EVP_CIPHER_CTX_free(ctx);
}

/* CBC bad padding: each last-byte value, plus a valid last byte with a bad earlier one. */
static void n_badpad(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    int v;

    for (v = 0; v <= 17; v++) {
        EVP_CIPHER_CTX *e = keyed(lc, cipher, 1, t), *d;
        unsigned char pt[32], ct[48];
        int l = 0, ret;

        memcpy(pt, data, 32);
        memset(pt + 16, v == 17 ? 3 : v, 16);
        if (v == 17)
            pt[29] = 2; /* "..02 03 03" claims 3 but one byte differs */
        EVP_CIPHER_CTX_set_padding(e, 0);
        ret = EVP_CipherUpdate(e, ct, &l, pt, 32);
        ev_add(t, ret, ret > 0, l, ct, 32, "raw encrypt");
        d = keyed(lc, cipher, 0, t);
        upd(t, d, ct, 32, "decrypt");
        fin(t, d, v == 0 || v == 17 ? "bad padding final" : "padding final");
        EVP_CIPHER_CTX_free(e);
        EVP_CIPHER_CTX_free(d);
    }
}

static void n_gcm_tagfail(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    EVP_CIPHER_CTX *e = keyed(lc, cipher, 1, t), *d;
    unsigned char ct[64], tag[16];
    int l = 0, ret, which;

    ret = EVP_CipherUpdate(e, ct, &l, data, 40);
    ret = ret && EVP_CipherFinal_ex(e, ct + 40, &l);
    ret = ret && EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0;
    ev_add(t, ret, ret > 0, 0, tag, 16, "seal");
    for (which = 0; which < 3; which++) {
        unsigned char c2[64], t2[16];

        memcpy(c2, ct, 40);
        memcpy(t2, tag, 16);
        if (which == 0)
            t2[15] ^= 1;
        else if (which == 1)
            c2[0] ^= 0x80;
        d = keyed(lc, cipher, 0, t);
        ret = EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, 16, t2);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "set tag");
        if (which == 2) { /* AAD that was not there */
            ret = EVP_CipherUpdate(d, NULL, &l, data, 1);
            ev_add(t, ret, ret > 0, l, NULL, 0, "extra aad");
        }
        upd(t, d, c2, 40, "open");
        fin(t, d, "tag check");
        EVP_CIPHER_CTX_free(d);
    }
    EVP_CIPHER_CTX_free(e);
}

static void n_small_update(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    /* EVP_CipherUpdate with 0-length, NULL outl */
    EVP_CIPHER_CTX *ctx = keyed(lc, cipher, 1, t);
    unsigned char out[64];
    int ret;

    ret = EVP_CipherUpdate(ctx, out, NULL, data, 16);
    ev_add(t, ret, ret > 0, 0, NULL, 0, "NULL outl");
    upd(t, ctx, data, 0, "empty update");
    fin(t, ctx, "final");
    EVP_CIPHER_CTX_free(ctx);
}

START_TEST(differential_cases)
{
    const char *c = tu_ciphers[_i];
    int mode = ev_mode(c);

    setup_data((unsigned)_i);
    differential(n_keylen, c, "wrong key length", "wrong key length");
    /* OpenSSL 3.0 ignores a keylen param given with init: compared, not required to fail */
    differential(n_keylen, c, "wrong keylen param", NULL);
    differential(n_nokey, c, "no key", NULL);
    differential(n_small_update, c, "odd update arguments", "NULL outl");
    if (mode != EV_GCM)
        differential(n_ivlen, c, "iv length", NULL);
    if (mode == EV_CBC) {
        differential(n_badpad, c, "bad padding", "bad padding final");
        differential(n_after_failed_final, c, "after failed final", "failing final");
    }
    if (mode == EV_GCM) {
        differential(n_taglen, c, "tag length", "set tag");
        differential(n_noiv, c, "no iv", "dec update without iv");
        differential(n_gcm_tagfail, c, "tag check", "tag check");
        differential(n_after_failed_final, c, "after failed final", "failing final");
    }
}
END_TEST

/* NULL buffers with a nonzero length: ours only (the default provider would crash). */
START_TEST(null_buffers)
{
    const char *c = tu_ciphers[_i];
    EVP_CIPHER_CTX *ctx;
    ev_buf b;
    int outl, ret;

    if (!ev_strict_errors()) {
        fprintf(stderr, "SKIP %s: runs only against kcapi-aio (TU_OURS_PROVIDER is set)\n", __func__);
        return;
    }
    setup_data((unsigned)_i);
    ctx = EVP_CIPHER_CTX_new();
    ck_assert(EVP_CipherInit_ex2(ctx, ev_cipher(ev_ours(), c), key, iv, 1, NULL));
    ev_buf_init(&b, 64, 1);
    if (ev_mode(c) != EV_GCM) { /* GCM: in == NULL means final and out == NULL means AAD */
        ret = EVP_CipherUpdate(ctx, b.p, &outl, NULL, 32);
        must_fail(ret, "update with NULL input", c);
        ret = EVP_CipherUpdate(ctx, NULL, &outl, data, 32);
        must_fail(ret, "update with NULL output", c);
    }
    /* OpenSSL 3.0's EVP passes a negative length on as a huge size_t (the default
     * provider crashes on it); the provider must refuse it */
    ret = EVP_CipherUpdate(ctx, b.p, &outl, data, -1);
    must_fail(ret, "update with length -1", c);
    ck_assert_msg(ev_buf_intact(&b), "%s: write outside the output buffer", c);
    ev_buf_free(&b);
    EVP_CIPHER_CTX_free(ctx);
}
END_TEST

/* GCM update with NULL input and a length: the default provider treats it as final. */
static void n_gcm_null_in(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    EVP_CIPHER_CTX *ctx = keyed(lc, cipher, 1, t);
    unsigned char out[64];
    int outl = -7, ret;

    upd(t, ctx, data, 20, "data");
    ret = EVP_CipherUpdate(ctx, out, &outl, NULL, 5);
    ev_add(t, ret, ret > 0, outl, NULL, 0, "NULL input");
    ret = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out);
    ev_add(t, ret, ret > 0, 0, out, 16, "tag");
    EVP_CIPHER_CTX_free(ctx);
}

START_TEST(gcm_null_input)
{
    setup_data(50 + (unsigned)_i);
    differential(n_gcm_null_in, tu_ciphers[6 + _i], "GCM NULL input", NULL);
}
END_TEST

/* Partially overlapping input and output must be refused by ours (the default
 * provider gives implementation-defined output, so it is not compared). */
START_TEST(partial_overlap)
{
    const char *c = tu_ciphers[_i];
    static const int shifts[] = {1, -1, 15, -15, 16, -16, 17};
    size_t k;

    if (!ev_strict_errors()) {
        fprintf(stderr, "SKIP %s: runs only against kcapi-aio (TU_OURS_PROVIDER is set)\n", __func__);
        return;
    }
    setup_data(60 + (unsigned)_i);
    for (k = 0; k < sizeof(shifts) / sizeof(shifts[0]); k++) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        ev_buf b;
        unsigned char *in;
        int outl, ret;
        char what[64];

        ev_buf_init(&b, 200, 0);
        in = b.p + 40;
        memcpy(in, data, 64);
        ck_assert(EVP_CipherInit_ex2(ctx, ev_cipher(ev_ours(), c), key, iv, 1, NULL));
        ret = EVP_CipherUpdate(ctx, in + shifts[k], &outl, in, 64);
        snprintf(what, sizeof(what), "update with out = in %+d", shifts[k]);
        must_fail(ret, what, c);
        ck_assert_msg(ev_buf_intact(&b), "%s %s: write outside the buffer", c, what);
        ev_buf_free(&b);
        EVP_CIPHER_CTX_free(ctx);
    }
}
END_TEST

/* The provider's own update/final with an output size smaller than needed: no public
 * EVP call passes a caller's size, so the provider's dispatch table is called the
 * way libcrypto calls it (OSSL_PROVIDER_get0_dispatch + query_operation). */
typedef struct {
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_encrypt_init_fn *einit;
    OSSL_FUNC_cipher_decrypt_init_fn *dinit;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    void *provctx;
} rawciph;

static int name_in(const char *names, const char *want)
{
    size_t n = strlen(want);

    while (names != NULL && *names) {
        const char *end = strchr(names, ':');
        size_t l = end ? (size_t)(end - names) : strlen(names);

        if (l == n && strncasecmp(names, want, n) == 0)
            return 1;
        names = end ? end + 1 : NULL;
    }
    return 0;
}

static int raw_get(OSSL_LIB_CTX *lc, const char *cipher, rawciph *rc)
{
    const OSSL_PROVIDER *prov = EVP_CIPHER_get0_provider(ev_cipher(lc, cipher));
    const OSSL_DISPATCH *d = OSSL_PROVIDER_get0_dispatch(prov);
    OSSL_FUNC_provider_query_operation_fn *query = NULL;
    const OSSL_ALGORITHM *alg;
    int no_cache = 0;

    memset(rc, 0, sizeof(*rc));
    for (; d != NULL && d->function_id != 0; d++)
        if (d->function_id == OSSL_FUNC_PROVIDER_QUERY_OPERATION)
            query = OSSL_FUNC_provider_query_operation(d);
    if (query == NULL)
        return 0;
    rc->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
    for (alg = query(rc->provctx, OSSL_OP_CIPHER, &no_cache); alg && alg->algorithm_names; alg++) {
        if (!name_in(alg->algorithm_names, cipher))
            continue;
        for (d = alg->implementation; d->function_id != 0; d++) {
            switch (d->function_id) {
            case OSSL_FUNC_CIPHER_NEWCTX: rc->newctx = OSSL_FUNC_cipher_newctx(d); break;
            case OSSL_FUNC_CIPHER_FREECTX: rc->freectx = OSSL_FUNC_cipher_freectx(d); break;
            case OSSL_FUNC_CIPHER_ENCRYPT_INIT: rc->einit = OSSL_FUNC_cipher_encrypt_init(d); break;
            case OSSL_FUNC_CIPHER_DECRYPT_INIT: rc->dinit = OSSL_FUNC_cipher_decrypt_init(d); break;
            case OSSL_FUNC_CIPHER_UPDATE: rc->update = OSSL_FUNC_cipher_update(d); break;
            case OSSL_FUNC_CIPHER_FINAL: rc->final = OSSL_FUNC_cipher_final(d); break;
            }
        }
        return rc->newctx && rc->freectx && rc->einit && rc->dinit && rc->update && rc->final;
    }
    return 0;
}

static void n_outsize(OSSL_LIB_CTX *lc, const char *cipher, ev_trace *t)
{
    rawciph rc;
    int mode = ev_mode(cipher), enc;
    size_t kl = ev_keylen(cipher), ivl = mode == EV_GCM ? 12 : 16;

    ck_assert_msg(raw_get(lc, cipher, &rc), "%s: no dispatch table found", cipher);
    for (enc = 0; enc <= 1; enc++) {
        static const size_t lens[] = {20, 32, 48};
        size_t i;

        for (i = 0; i < 3; i++) {
            size_t in = lens[i], need = mode == EV_CBC ? in / 16 * 16 : in, outl = 99, os;
            void *ctx = rc.newctx(rc.provctx);
            ev_buf b;
            int ret;

            ck_assert_ptr_nonnull(ctx);
            ret = enc ? rc.einit(ctx, key, kl, iv, ivl, NULL) : rc.dinit(ctx, key, kl, iv, ivl, NULL);
            ev_add(t, ret, ret > 0, 0, NULL, 0, "raw init");
            if (mode == EV_CBC && !enc)
                need = in > 16 ? (in - 1) / 16 * 16 : 0; /* decryption holds a block back */
            os = need > 0 ? need - 1 : 0;
            ev_buf_init(&b, os, 7);
            ret = rc.update(ctx, b.p, &outl, os, data, in);
            ev_add(t, ret, ret > 0, (long long)outl, NULL, 0,
                   "update %zu with outsize %zu", in, os);
            ev_add(t, ev_buf_intact(&b), 1, 0, NULL, 0, "update canaries");
            ev_buf_free(&b);
            /* final with no room, where CBC encryption owes a padding block */
            ev_buf_init(&b, 0, 9);
            outl = 99;
            ret = rc.final(ctx, b.p, &outl, 0);
            ev_add(t, ret, ret > 0, (long long)outl, NULL, 0, "final with outsize 0");
            ev_add(t, ev_buf_intact(&b), 1, 0, NULL, 0, "final canaries");
            ev_buf_free(&b);
            rc.freectx(ctx);
        }
    }
}

START_TEST(small_outsize)
{
    const char *c = tu_ciphers[_i];

    setup_data(70 + (unsigned)_i);
    differential(n_outsize, c, "small outsize", NULL);
}
END_TEST


/*
 * Cases where the default provider gives wrong bytes and kcapi-aio must not
 * (found by the differential fuzzer, test/fuzz): checked against a fresh,
 * correctly used default-provider context.
 */

/* A GCM tag offered to an encrypting context is refused, and the context keeps
 * its computed tag (OpenSSL 3.0's default provider overwrites it first). */
START_TEST(gcm_refused_tag_keeps_tag)
{
    const char *c = tu_ciphers[6 + _i];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new(), *r = EVP_CIPHER_CTX_new();
    unsigned char out[64], junk[16], t_ours[16], t_ref[16];
    int l = 0;

    setup_data(80 + (unsigned)_i);
    memset(junk, 0x59, sizeof(junk));
    ck_assert(EVP_EncryptInit_ex2(x, ev_cipher(ev_ours(), c), key, iv, NULL)
              && EVP_EncryptUpdate(x, out, &l, data, 40) && EVP_EncryptFinal_ex(x, out, &l));
    must_fail(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 9, junk), "set tag on an encrypting context", c);
    ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, t_ours) > 0);
    ck_assert(EVP_EncryptInit_ex2(r, ev_cipher(ev_ref(), c), key, iv, NULL)
              && EVP_EncryptUpdate(r, out, &l, data, 40) && EVP_EncryptFinal_ex(r, out, &l)
              && EVP_CIPHER_CTX_ctrl(r, EVP_CTRL_AEAD_GET_TAG, 16, t_ref) > 0);
    ck_assert_msg(memcmp(t_ours, t_ref, 16) == 0, "%s: the tag changed after a refused set-tag", c);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_CTX_free(r);
}
END_TEST

/* A CBC context keyed to encrypt, turned to decrypt without a new key, decrypts
 * (the default provider keeps the encryption key schedule and gives garbage). */
START_TEST(cbc_turned_around_without_key)
{
    const char *c = tu_ciphers[_i];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    unsigned char ct[80], pt[96];
    int l = 0, l2 = 0;

    setup_data(90 + (unsigned)_i);
    ck_assert(EVP_EncryptInit_ex2(x, ev_cipher(ev_ref(), c), key, iv, NULL)
              && EVP_EncryptUpdate(x, ct, &l, data, 64) && EVP_EncryptFinal_ex(x, ct + l, &l2));
    ck_assert_int_eq(l + l2, 80);
    ck_assert(EVP_EncryptInit_ex2(x, ev_cipher(ev_ours(), c), key, iv, NULL));
    ck_assert(EVP_CipherInit_ex2(x, NULL, NULL, iv, 0, NULL));
    ck_assert(EVP_DecryptUpdate(x, pt, &l, ct, 80) && EVP_DecryptFinal_ex(x, pt + l, &l2));
    ck_assert_int_eq(l + l2, 64);
    ck_assert_msg(memcmp(pt, data, 64) == 0, "%s: wrong plaintext after turning the context around", c);
    EVP_CIPHER_CTX_free(x);
}
END_TEST

/* A TLS MAC size above 64 (EVP_MAX_MD_SIZE) is refused when it is set. */
START_TEST(tls_mac_size_too_big)
{
    const char *c = tu_ciphers[_i];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    size_t sz = 65;
    OSSL_PARAM p[2] = { OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_TLS_MAC_SIZE, &sz),
                        OSSL_PARAM_construct_end() };

    if (!ev_strict_errors())
        return; /* the default provider accepts it (and fails on the first record) */
    setup_data(100 + (unsigned)_i);
    ck_assert(EVP_DecryptInit_ex2(x, ev_cipher(ev_ours(), c), key, iv, NULL));
    must_fail(EVP_CIPHER_CTX_set_params(x, p), "tls-mac-size 65", c);
    EVP_CIPHER_CTX_free(x);
}
END_TEST

/* A new GCM key without an IV once a message has started: refused with an error
 * (the default provider goes on from an all-zero counter block). */
START_TEST(gcm_rekey_without_iv)
{
    const char *c = tu_ciphers[6 + _i];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    unsigned char out[64], key2[32];
    int l = 0;
    size_t i;

    if (!ev_strict_errors())
        return;
    setup_data(110 + (unsigned)_i);
    for (i = 0; i < sizeof(key2); i++)
        key2[i] = (unsigned char)(key[i] ^ 0x5c);
    ck_assert(EVP_DecryptInit_ex2(x, ev_cipher(ev_ours(), c), key, iv, NULL)
              && EVP_DecryptUpdate(x, NULL, &l, data, 20) && EVP_DecryptUpdate(x, out, &l, data, 32));
    ck_assert(EVP_CipherInit_ex2(x, NULL, key2, NULL, 0, NULL));
    must_fail(EVP_DecryptUpdate(x, NULL, &l, data, 20), "AAD after a new key without an IV", c);
    EVP_CIPHER_CTX_free(x);
}
END_TEST

/* A GCM message begun as an encryption and turned into a decryption without a
 * new IV must not finish as a verified decryption (it used to: the tag was
 * computed, not checked). */
START_TEST(gcm_turned_around_mid_message)
{
    const char *c = tu_ciphers[6 + _i];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    unsigned char out[128], tag[16];
    int l = 0;

    setup_data(120 + (unsigned)_i);
    memset(tag, 0x5a, sizeof(tag));
    ck_assert(EVP_EncryptInit_ex2(x, ev_cipher(ev_ours(), c), key, iv, NULL)
              && EVP_EncryptUpdate(x, out, &l, data, 103));
    ck_assert(EVP_CipherInit_ex2(x, NULL, NULL, NULL, 0, NULL));
    ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag) > 0);
    must_fail(EVP_DecryptFinal_ex(x, out, &l), "final of a message turned around", c);
    EVP_CIPHER_CTX_free(x);
}
END_TEST

/* A TLS fixed IV that leaves fewer than 8 bytes of the IV for the explicit part
 * is refused, however long it claims to be (the default provider's check wraps
 * around and accepts a fixed IV longer than the IV on a decrypting context);
 * 4 bytes, and the whole-IV form (length -1), are accepted. */
START_TEST(gcm_tls_fixed_iv_too_long)
{
    static const size_t bad[] = {0, 3, 5, 13, (size_t)-4, (size_t)-9, SSIZE_MAX};
    const char *c = tu_ciphers[6 + _i];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[2];
    char what[64];
    size_t i;

    if (!ev_strict_errors())
        return;
    setup_data(130 + (unsigned)_i);
    ck_assert(EVP_DecryptInit_ex2(x, ev_cipher(ev_ours(), c), key, iv, NULL));
    p[1] = OSSL_PARAM_construct_end();
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, data, bad[i]);
        snprintf(what, sizeof(what), "tlsivfixed of %zu bytes with a 12-byte IV", bad[i]);
        must_fail(EVP_CIPHER_CTX_set_params(x, p), what, c);
    }
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, data, 4);
    ck_assert_msg(EVP_CIPHER_CTX_set_params(x, p) > 0, "%s: tlsivfixed of 4 bytes refused", c);
    ck_assert_msg(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IV_FIXED, -1, (void *)iv) > 0,
                  "%s: the whole IV as tlsivfixed (length -1) refused", c);
    EVP_CIPHER_CTX_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evp_negative");
    TCase *tc = ev_tcase("negative");

    tcase_add_loop_test(tc, differential_cases, 0, 9);
    tcase_add_loop_test(tc, null_buffers, 0, 9);
    tcase_add_loop_test(tc, gcm_null_input, 0, 3);
    tcase_add_loop_test(tc, partial_overlap, 0, 9);
    tcase_add_loop_test(tc, small_outsize, 0, 9);
    tcase_add_loop_test(tc, gcm_refused_tag_keeps_tag, 0, 3);
    tcase_add_loop_test(tc, cbc_turned_around_without_key, 0, 3);
    tcase_add_loop_test(tc, tls_mac_size_too_big, 0, 6);
    tcase_add_loop_test(tc, gcm_rekey_without_iv, 0, 3);
    tcase_add_loop_test(tc, gcm_turned_around_mid_message, 0, 3);
    tcase_add_loop_test(tc, gcm_tls_fixed_iv_too_long, 0, 3);
    suite_add_tcase(s, tc);
    return ev_run(s);
}
