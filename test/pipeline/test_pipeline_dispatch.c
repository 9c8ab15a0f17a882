/*
 * The pipeline functions through kcapi-aio's dispatch tables, without EVP's
 * pipeline API: runs under any OpenSSL 3, so the module built against 3.0
 * headers is shown to export IDs 15-18 and to pipeline correctly. Also the
 * bad inputs EVP never passes on (numpipes above 32 or changing after init).
 */
#include <stdio.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"
#include "pipeutil.h"

/* OpenSSL 3.5's IDs and signatures, declared here for 3.0 headers. */
enum { P_EINIT = 15, P_DINIT = 16, P_UPDATE = 17, P_FINAL = 18 };
typedef int p_init_fn(void *, const unsigned char *, size_t, size_t, const unsigned char **, size_t,
                      const OSSL_PARAM[]);
typedef int p_update_fn(void *, size_t, unsigned char **, size_t *, const size_t *, const unsigned char **,
                        const size_t *);
typedef int p_final_fn(void *, size_t, unsigned char **, size_t *, const size_t *);

struct impl {
    void *(*newctx)(void *);
    void (*freectx)(void *);
    int (*set)(void *, const OSSL_PARAM[]);
    int (*get)(void *, OSSL_PARAM[]);
    p_init_fn *init[2];   /* [dec, enc] */
    p_update_fn *update;
    p_final_fn *final;
    void *provctx;
};

static OSSL_PROVIDER *prov;

static void find_impl(int ci, struct impl *im)
{
    const OSSL_ALGORITHM *a;
    const OSSL_DISPATCH *d;
    int no_cache = 0;

    memset(im, 0, sizeof(*im));
    if (prov == NULL)
        prov = OSSL_PROVIDER_try_load(tu_ours(), KCAPI_AIO_NAME, 1);
    ck_assert_ptr_nonnull(prov);
    im->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
    a = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache);
    ck_assert_ptr_nonnull(a);
    for (; a->algorithm_names != NULL; a++)
        if (strncmp(a->algorithm_names, tu_ciphers[ci], strlen(tu_ciphers[ci])) == 0)
            break;
    ck_assert_msg(a->algorithm_names != NULL, "%s not offered", tu_ciphers[ci]);
    for (d = a->implementation; d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX: im->newctx = (void *(*)(void *))d->function; break;
        case OSSL_FUNC_CIPHER_FREECTX: im->freectx = (void (*)(void *))d->function; break;
        case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: im->set = (int (*)(void *, const OSSL_PARAM[]))d->function; break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: im->get = (int (*)(void *, OSSL_PARAM[]))d->function; break;
        case P_EINIT: im->init[1] = (p_init_fn *)d->function; break;
        case P_DINIT: im->init[0] = (p_init_fn *)d->function; break;
        case P_UPDATE: im->update = (p_update_fn *)d->function; break;
        case P_FINAL: im->final = (p_final_fn *)d->function; break;
        default: break;
        }
    }
    ck_assert_msg(im->init[0] && im->init[1] && im->update && im->final,
                  "%s: pipeline functions (IDs 15-18) missing from the dispatch table", tu_ciphers[ci]);
    ck_assert(im->newctx && im->freectx && im->set && im->get);
}

START_TEST(exported)
{
    struct impl im;

    find_impl(_i, &im);
}
END_TEST

/* Encrypt then decrypt n records through the dispatch functions; compare with the default provider. */
START_TEST(roundtrip)
{
    static const size_t ns[] = { 1, 3, 17, 32 };
    struct impl im;
    size_t t, i;
    int ci = _i, gcm = pu_is_gcm(_i);

    find_impl(ci, &im);
    for (t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        size_t n = ns[t], ivlen = gcm ? 12 : 16;
        unsigned char key[32], iv[PU_MAX][16], aad[PU_MAX][20], pt[PU_MAX][200], ct[PU_MAX][216],
            back[PU_MAX][216], ref[216], tag[PU_MAX][16], reftag[16];
        unsigned char *ivs[PU_MAX], *outp[PU_MAX], *tags[PU_MAX];
        const unsigned char *inp[PU_MAX];
        size_t len[PU_MAX], inl[PU_MAX], outl[PU_MAX], outsize[PU_MAX], ctl[PU_MAX], ptl[PU_MAX], rl;
        void *ta = tags, *ctx;
        OSSL_PARAM tp[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
        int enc;

        tu_rand_bytes(key, sizeof(key));
        tu_rand_bytes(iv, sizeof(iv));
        tu_rand_bytes(aad, sizeof(aad));
        tu_rand_bytes(pt, sizeof(pt));
        for (i = 0; i < n; i++) {
            len[i] = tu_rand_below(200);
            ivs[i] = iv[i];
            tags[i] = tag[i];
        }
        tp[0] = OSSL_PARAM_construct_octet_ptr("pipeline-tag", &ta, 16);
        for (enc = 1; enc >= 0; enc--) {
            ctx = im.newctx(im.provctx);
            ck_assert_ptr_nonnull(ctx);
            ck_assert_msg(im.init[enc](ctx, key, pu_keylen(ci), n, (const unsigned char **)ivs, ivlen, NULL),
                          "%s", pu_errors());
            if (gcm) {
                for (i = 0; i < n; i++) {
                    inp[i] = aad[i];
                    inl[i] = 20;
                }
                ck_assert_msg(im.update(ctx, n, NULL, outl, NULL, inp, inl), "%s", pu_errors());
                if (!enc)
                    ck_assert_msg(im.set(ctx, tp), "%s", pu_errors());
            }
            for (i = 0; i < n; i++) {
                inp[i] = enc ? pt[i] : ct[i];
                inl[i] = enc ? len[i] : ctl[i];
                outp[i] = enc ? ct[i] : back[i];
                outsize[i] = 216;
            }
            ck_assert_msg(im.update(ctx, n, outp, outl, outsize, inp, inl), "%s", pu_errors());
            for (i = 0; i < n; i++) {
                (enc ? ctl : ptl)[i] = outl[i];
                outp[i] += outl[i];
                outsize[i] -= outl[i];
            }
            ck_assert_msg(im.final(ctx, n, outp, outl, outsize), "%s", pu_errors());
            for (i = 0; i < n; i++)
                (enc ? ctl : ptl)[i] += outl[i];
            if (gcm && enc)
                ck_assert_msg(im.get(ctx, tp), "%s", pu_errors());
            im.freectx(ctx);
        }
        for (i = 0; i < n; i++) {
            ck_assert(pu_ref(ci, 1, 1, key, iv[i], ivlen, aad[i], 20, pt[i], len[i], ref, &rl, reftag, 16));
            ck_assert_msg(tu_same(tu_ciphers[ci], ct[i], ctl[i], ref, rl), "pipe %zu ciphertext", i);
            ck_assert_msg(!gcm || memcmp(tag[i], reftag, 16) == 0, "pipe %zu tag", i);
            ck_assert_msg(tu_same(tu_ciphers[ci], back[i], ptl[i], pt[i], len[i]), "pipe %zu plaintext", i);
        }
    }
}
END_TEST

/* What EVP filters before the provider sees it: the provider refuses it too. */
START_TEST(bad_numpipes)
{
    struct impl im;
    unsigned char key[32] = { 0 }, iv[33][16], *ivs[33], in[2][32] = { { 0 } }, out[2][48], *outp[2];
    const unsigned char *inp[2] = { in[0], in[1] };
    size_t inl[2] = { 32, 32 }, outl[2], outsize[2] = { 48, 48 }, i, ivlen = pu_is_gcm(_i) ? 12 : 16;
    void *ctx;

    find_impl(_i, &im);
    memset(iv, 0, sizeof(iv));
    for (i = 0; i < 33; i++)
        ivs[i] = iv[i];
    memset(out, 0xEE, sizeof(out));
    outp[0] = out[0];
    outp[1] = out[1];
    ctx = im.newctx(im.provctx);
    ck_assert(!im.init[1](ctx, key, pu_keylen(_i), 33, (const unsigned char **)ivs, ivlen, NULL));
    ck_assert(strstr(pu_errors(), "33 pipes") != NULL);
    ck_assert(im.init[1](ctx, key, pu_keylen(_i), 2, (const unsigned char **)ivs, ivlen, NULL));
    ck_assert(!im.update(ctx, 1, outp, outl, outsize, inp, inl));
    ck_assert(strstr(pu_errors(), "number of pipes") != NULL);
    ck_assert(!im.update(ctx, 3, outp, outl, outsize, inp, inl));
    ck_assert(strstr(pu_errors(), "number of pipes") != NULL);
    ck_assert(!im.update(ctx, 2, outp, NULL, outsize, inp, inl));
    ck_assert(strstr(pu_errors(), "NULL") != NULL);
    ck_assert(!im.update(ctx, 2, outp, outl, outsize, inp, NULL));
    ck_assert(strstr(pu_errors(), "NULL") != NULL);
    ck_assert(!im.final(ctx, 3, outp, outl, outsize));
    ck_assert(strstr(pu_errors(), "number of pipes") != NULL);
    for (i = 0; i < sizeof(out); i++)
        ck_assert(((unsigned char *)out)[i] == 0xEE);
    im.freectx(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_dispatch");
    TCase *tc = tcase_create("dispatch");
    SRunner *sr;
    int failed;

    tu_seed();
    fprintf(stderr, "libcrypto %s\n", OpenSSL_version(OPENSSL_VERSION));
    tcase_add_loop_test(tc, exported, 0, 9);
    tcase_add_loop_test(tc, roundtrip, 0, 9);
    tcase_add_loop_test(tc, bad_numpipes, 0, 9);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (prov != NULL)
        OSSL_PROVIDER_unload(prov);
    return failed == 0 ? 0 : 1;
}
