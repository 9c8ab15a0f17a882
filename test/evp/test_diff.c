/* Randomised differential test: the same EVP script (keys, IVs, AAD, lengths,
 * chunkings, padding, tag lengths, buffer placement) run against the provider under
 * test and OpenSSL's default provider must give the same bytes, lengths and
 * success/failure at every step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evputil.h"

#define MAXLEN 70000
#define MAXCHUNKS 4096

typedef struct {
    const char *cipher;
    int mode, enc;
    unsigned char key[32], iv[128], tag[16];
    size_t keylen, ivlen, taglen; /* taglen: decrypt, tag given; encrypt, tag read */
    int set_ivlen;                /* GCM: IV length other than 12 */
    int via_params;               /* params instead of ctrls */
    int init_form;                /* 0: ex2 all at once, 1: cipher then key+iv, 2: key then iv */
    int pad;                      /* CBC padding */
    int tag_early;                /* GCM decrypt: tag set before data */
    const unsigned char *in;
    size_t len;
    size_t chunks[MAXCHUNKS], nchunks;
    const unsigned char *aad;
    size_t aadlen, aadchunks[64], naad;
    int inplace;
    size_t in_mis, out_mis;
} dcase;

/* Sizes: mostly small and around block boundaries, sometimes large. */
static size_t pick_len(ev_rng *r)
{
    switch (ev_below(r, 10)) {
    case 0: case 1: case 2: case 3:
        return ev_below(r, 65);
    case 4: case 5:
        return 16 * (1 + ev_below(r, 64)) + ev_below(r, 3) - 1; /* k*16 - 1 .. k*16 + 1 */
    case 6: case 7:
        return ev_below(r, 4097);
    case 8:
        return 65536 + ev_below(r, 3) - 1; /* around a 64 KiB kernel page set */
    default:
        return ev_below(r, MAXLEN + 1);
    }
}

static size_t pick_chunk(ev_rng *r, size_t left, size_t total)
{
    size_t c;

    switch (ev_below(r, 10)) {
    case 0:
        c = 0;
        break;
    case 1: case 2:
        c = 1;
        break;
    case 3: case 4:
        c = 1 + ev_below(r, 17);
        break;
    case 5:
        c = 16 * ev_below(r, 5);
        break;
    case 6: case 7:
        c = ev_below(r, 200);
        break;
    default:
        c = ev_below(r, total / 3 + 2);
        break;
    }
    return c < left ? c : left;
}

/* Split len bytes into update calls. 'blocks' keeps every chunk a multiple of 16 (for
 * in-place CBC, where output must not lag behind input). */
static void split(ev_rng *r, size_t len, size_t *chunks, size_t *n, size_t maxn, int blocks)
{
    size_t left = len;

    *n = 0;
    if (ev_below(r, 4) == 0) { /* one update */
        chunks[(*n)++] = len;
        return;
    }
    while (left > 0 && *n < maxn - 1) {
        size_t c = pick_chunk(r, left, len);

        if (blocks)
            c = c / 16 * 16;
        if (c == 0 && ev_below(r, 3) != 0)
            continue; /* keep empty updates present but not dominant */
        chunks[(*n)++] = c;
        left -= c;
    }
    if (left > 0)
        chunks[(*n)++] = left;
}

static int set_size_param(EVP_CIPHER_CTX *ctx, const char *name, size_t v)
{
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_size_t(name, &v), OSSL_PARAM_construct_end()};

    return EVP_CIPHER_CTX_set_params(ctx, p);
}

static int set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag, size_t t, int via_params)
{
    if (via_params) {
        OSSL_PARAM p[2] = {
            OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, t),
            OSSL_PARAM_construct_end()};

        return EVP_CIPHER_CTX_set_params(ctx, p);
    }
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)t, (void *)tag);
}

static int get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag, size_t t, int via_params)
{
    if (via_params) {
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, t),
                           OSSL_PARAM_construct_end()};

        return EVP_CIPHER_CTX_get_params(ctx, p);
    }
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)t, tag);
}

/* Run one case, recording every step in t. */
static void run_case(OSSL_LIB_CTX *lc, const dcase *c, ev_trace *t)
{
    EVP_CIPHER *ciph = ev_cipher(lc, c->cipher);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t cap = c->len + 64, i, inpos = 0, outpos = 0;
    ev_buf inb, outb;
    unsigned char *in, *out;
    int ret, outl;

    ck_assert_ptr_nonnull(ctx);
    ev_buf_init(&inb, cap, c->in_mis);
    in = inb.p;
    if (c->len > 0)
        memcpy(in, c->in, c->len);
    if (c->inplace) {
        out = in;
    } else {
        ev_buf_init(&outb, cap, c->out_mis);
        out = outb.p;
    }

    /* Key and IV setup in the chosen form. */
    if (c->init_form == 0 && !c->set_ivlen) {
        ret = EVP_CipherInit_ex2(ctx, ciph, c->key, c->iv, c->enc, NULL);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "init key+iv");
    } else {
        ret = EVP_CipherInit_ex2(ctx, ciph, c->init_form == 2 ? c->key : NULL, NULL, c->enc, NULL);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "init cipher");
        if (c->set_ivlen) {
            ret = c->via_params ? set_size_param(ctx, OSSL_CIPHER_PARAM_IVLEN, c->ivlen)
                                : EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)c->ivlen, NULL);
            ev_add(t, ret, ret > 0, 0, NULL, 0, "set ivlen %zu", c->ivlen);
        }
        if (c->init_form == 2) {
            ret = EVP_CipherInit_ex2(ctx, NULL, NULL, c->iv, -1, NULL);
            ev_add(t, ret, ret > 0, 0, NULL, 0, "init iv");
        } else {
            ret = EVP_CipherInit_ex2(ctx, NULL, c->key, c->iv, -1, NULL);
            ev_add(t, ret, ret > 0, 0, NULL, 0, "init key+iv");
        }
    }
    if (c->mode == EV_CBC) {
        if (c->via_params) {
            unsigned int pad = (unsigned int)c->pad;
            OSSL_PARAM p[2] = {OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_PADDING, &pad),
                               OSSL_PARAM_construct_end()};

            ret = EVP_CIPHER_CTX_set_params(ctx, p);
        } else {
            ret = EVP_CIPHER_CTX_set_padding(ctx, c->pad);
        }
        ev_add(t, ret, ret > 0, 0, NULL, 0, "padding %d", c->pad);
    }
    if (c->mode == EV_GCM && !c->enc && c->tag_early) {
        ret = set_tag(ctx, c->tag, c->taglen, c->via_params);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "set tag %zu (early)", c->taglen);
    }
    for (i = 0, inpos = 0; i < c->naad; i++) {
        ret = EVP_CipherUpdate(ctx, NULL, &outl, c->aad + inpos, (int)c->aadchunks[i]);
        ev_add(t, ret, ret > 0, outl, NULL, 0, "aad update %zu (%zu)", i, c->aadchunks[i]);
        inpos += c->aadchunks[i];
    }
    for (i = 0, inpos = 0; i < c->nchunks; i++) {
        outl = -7;
        ret = EVP_CipherUpdate(ctx, out + outpos, &outl, in + inpos, (int)c->chunks[i]);
        ev_add(t, ret, ret > 0, outl, out + outpos, ret > 0 && outl > 0 ? (size_t)outl : 0,
               "update %zu (%zu)", i, c->chunks[i]);
        inpos += c->chunks[i];
        if (ret > 0 && outl > 0)
            outpos += (size_t)outl;
    }
    if (c->mode == EV_GCM && !c->enc && !c->tag_early) {
        ret = set_tag(ctx, c->tag, c->taglen, c->via_params);
        ev_add(t, ret, ret > 0, 0, NULL, 0, "set tag %zu", c->taglen);
    }
    outl = -7;
    ret = EVP_CipherFinal_ex(ctx, out + outpos, &outl);
    ev_add(t, ret, ret > 0, outl, out + outpos, ret > 0 && outl > 0 ? (size_t)outl : 0, "final");
    if (c->mode == EV_GCM && c->enc) {
        unsigned char tag[16];

        ret = get_tag(ctx, tag, c->taglen, c->via_params);
        ev_add(t, ret, ret > 0, 0, tag, c->taglen, "get tag %zu", c->taglen);
    }
    ev_add(t, ev_buf_intact(&inb) && (c->inplace || ev_buf_intact(&outb)), 1, 0, NULL, 0,
           "canaries");
    EVP_CIPHER_CTX_free(ctx);
    ev_buf_free(&inb);
    if (!c->inplace)
        ev_buf_free(&outb);
}

/* One-shot encryption with the reference, to make valid ciphertexts for decrypt cases. */
static size_t ref_encrypt(const dcase *c, unsigned char *out, unsigned char tag[16])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;

    ck_assert(EVP_CipherInit_ex2(ctx, ev_cipher(ev_ref(), c->cipher), NULL, NULL, 1, NULL));
    if (c->set_ivlen)
        ck_assert(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)c->ivlen, NULL) > 0);
    ck_assert(EVP_CipherInit_ex2(ctx, NULL, c->key, c->iv, 1, NULL));
    if (c->mode == EV_CBC)
        EVP_CIPHER_CTX_set_padding(ctx, c->pad);
    if (c->aadlen > 0)
        ck_assert(EVP_CipherUpdate(ctx, NULL, &l1, c->aad, (int)c->aadlen));
    ck_assert(EVP_CipherUpdate(ctx, out, &l1, c->in, (int)c->len));
    ck_assert(EVP_CipherFinal_ex(ctx, out + l1, &l2));
    if (c->mode == EV_GCM)
        ck_assert(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0);
    EVP_CIPHER_CTX_free(ctx);
    return (size_t)(l1 + l2);
}

static void describe(char *s, size_t n, const dcase *c, uint64_t seed)
{
    snprintf(s, n,
             "%s %s case-seed 0x%016llx (rerun: TU_CASE=0x%016llx) len=%zu chunks=%zu aad=%zu/%zu "
             "ivlen=%zu tag=%zu%s pad=%d form=%d params=%d inplace=%d mis=%zu/%zu",
             c->cipher, c->enc ? "encrypt" : "decrypt", (unsigned long long)seed,
             (unsigned long long)seed, c->len, c->nchunks, c->aadlen, c->naad, c->ivlen, c->taglen,
             c->tag_early ? "(early)" : "", c->pad, c->init_form, c->via_params, c->inplace,
             c->in_mis, c->out_mis);
}

static unsigned char plain[MAXLEN + 32], cbuf[MAXLEN + 64], aadbuf[1024];

/* Build and run one case from its seed; returns 1 when both providers agree. */
static int one_case(const char *cipher, uint64_t seed, int force_enc)
{
    static dcase c;
    ev_rng r = {seed};
    ev_trace te = {0}, tg = {0};
    char desc[512];
    int same, blocks;
    static const size_t odd_ivlens[] = {1, 8, 16, 60, 128, 13, 64, 100};

    memset(&c, 0, sizeof(c));
    c.cipher = cipher;
    c.mode = ev_mode(cipher);
    c.enc = force_enc >= 0 ? force_enc : (int)ev_below(&r, 2);
    c.keylen = ev_keylen(cipher);
    ev_bytes(&r, c.key, sizeof(c.key));
    ev_bytes(&r, c.iv, sizeof(c.iv));
    c.ivlen = c.mode == EV_GCM ? 12 : 16;
    if (c.mode == EV_GCM && ev_below(&r, 4) == 0) {
        c.set_ivlen = 1;
        c.ivlen = ev_below(&r, 2) ? odd_ivlens[ev_below(&r, 8)] : 1 + ev_below(&r, 128);
    }
    c.via_params = (int)ev_below(&r, 2);
    c.init_form = (int)ev_below(&r, 3);
    c.pad = c.mode == EV_CBC ? (ev_below(&r, 3) != 0) : 1;
    c.len = pick_len(&r);
    if (c.mode == EV_CBC && !c.pad)
        c.len = c.len / 16 * 16; /* the failing non-multiple case is its own test */
    ev_bytes(&r, plain, c.len);
    c.in = plain;
    if (c.mode == EV_GCM) {
        c.aadlen = ev_below(&r, 4) == 0 ? 0 : ev_below(&r, sizeof(aadbuf) + 1);
        if (ev_below(&r, 4) == 0)
            c.aadlen = ev_below(&r, 33);
        ev_bytes(&r, aadbuf, c.aadlen);
        c.aad = aadbuf;
        if (c.aadlen > 0)
            split(&r, c.aadlen, c.aadchunks, &c.naad, 64, 0);
        c.taglen = ev_below(&r, 2) ? 16 : 1 + ev_below(&r, 16);
        c.tag_early = (int)ev_below(&r, 2);
    }
    c.inplace = ev_below(&r, 4) == 0;
    c.in_mis = ev_below(&r, 16);
    c.out_mis = ev_below(&r, 16);

    if (!c.enc) {
        unsigned char tag[16];

        c.len = ref_encrypt(&c, cbuf, tag);
        memcpy(c.tag, tag, 16);
        c.in = cbuf;
        if (ev_below(&r, 8) == 0) {
            /* Tamper: a flipped bit in the data or the tag must fail (or, for CBC/CTR,
             * decrypt to the same garbage) identically. */
            if (c.len > 0 && ev_below(&r, 2))
                cbuf[ev_below(&r, c.len)] ^= (unsigned char)(1u << ev_below(&r, 8));
            else if (c.mode == EV_GCM)
                c.tag[ev_below(&r, c.taglen)] ^= (unsigned char)(1u << ev_below(&r, 8));
        }
    }
    /* In-place CBC needs the output to keep pace with the input: block chunks, and
     * padded decryption in one update (it holds the last block back). */
    blocks = c.mode == EV_CBC && c.inplace;
    if (blocks && !c.enc && c.pad) {
        c.chunks[0] = c.len;
        c.nchunks = 1;
    } else {
        split(&r, c.len, c.chunks, &c.nchunks, MAXCHUNKS, blocks);
    }

    tg.ours = 1;
    run_case(ev_ref(), &c, &te);
    run_case(ev_ours(), &c, &tg);
    describe(desc, sizeof(desc), &c, seed);
    same = ev_trace_same(&te, &tg, desc);
    ev_trace_free(&te);
    ev_trace_free(&tg);
    return same;
}

#define MAX_REPORTED 5

START_TEST(random_cases)
{
    const char *cipher = tu_ciphers[_i];
    ev_rng stream = {ev_case_seed((unsigned)_i)};
    size_t n = ev_single_case() ? 1 : ev_iters(1500), i, bad = 0;

    for (i = 0; i < n; i++) {
        uint64_t seed = ev_single_case() ? stream.s : ev_rng_next(&stream);

        if (!one_case(cipher, seed, -1) && ++bad >= MAX_REPORTED)
            break;
    }
    ck_assert_msg(bad == 0, "%s: %zu mismatching case(s) (stopped after %d), see stderr", cipher,
                  bad, MAX_REPORTED);
}
END_TEST

/* CBC without padding on a non-multiple length must fail, in both providers, at
 * final, for both directions. */
START_TEST(cbc_nopad_partial_fails)
{
    const char *cipher = tu_ciphers[_i];
    static const size_t lens[] = {1, 15, 17, 31, 33, 100};
    size_t k;
    int enc;

    for (enc = 0; enc <= 1; enc++) {
        for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            dcase c;
            ev_trace te = {0}, tg = {0};
            char desc[512];
            ev_rng r = {ev_case_seed(100 + (unsigned)k)};

            memset(&c, 0, sizeof(c));
            c.cipher = cipher;
            c.mode = EV_CBC;
            c.enc = enc;
            c.keylen = ev_keylen(cipher);
            ev_bytes(&r, c.key, 32);
            ev_bytes(&r, c.iv, 16);
            ev_bytes(&r, plain, lens[k]);
            c.ivlen = 16;
            c.in = plain;
            c.len = lens[k];
            c.pad = 0;
            c.via_params = k & 1;
            split(&r, c.len, c.chunks, &c.nchunks, MAXCHUNKS, 0);
            tg.ours = 1;
            run_case(ev_ref(), &c, &te);
            run_case(ev_ours(), &c, &tg);
            describe(desc, sizeof(desc), &c, r.s);
            ck_assert_msg(ev_trace_same(&te, &tg, desc), "%s", desc);
            /* the final step (second-to-last record, before the canaries) must fail */
            ck_assert_msg(te.n >= 2 && te.r[te.n - 2].ret == 0, "reference accepted %s", desc);
            ev_trace_free(&te);
            ev_trace_free(&tg);
        }
    }
}
END_TEST

/* GCM decryption with every tag length 0..17, via ctrl and via params, correct and
 * wrong tags: success/failure must match the default provider at each length. */
START_TEST(gcm_tag_lengths)
{
    const char *cipher = tu_ciphers[6 + _i];
    size_t t;
    int wrong, via;

    for (t = 0; t <= 17; t++) {
        for (wrong = 0; wrong <= 1; wrong++) {
            for (via = 0; via <= 1; via++) {
                dcase c;
                ev_trace te = {0}, tg = {0};
                char desc[512];
                unsigned char tag[16];
                ev_rng r = {ev_case_seed(200 + (unsigned)t)};

                memset(&c, 0, sizeof(c));
                c.cipher = cipher;
                c.mode = EV_GCM;
                c.enc = 1;
                c.keylen = ev_keylen(cipher);
                ev_bytes(&r, c.key, 32);
                ev_bytes(&r, c.iv, 12);
                c.ivlen = 12;
                c.len = 37;
                ev_bytes(&r, plain, c.len);
                c.in = plain;
                c.aadlen = 20;
                ev_bytes(&r, aadbuf, c.aadlen);
                c.aad = aadbuf;
                c.aadchunks[0] = 7;
                c.aadchunks[1] = 13;
                c.naad = 2;
                c.len = ref_encrypt(&c, cbuf, tag);
                c.enc = 0;
                c.in = cbuf;
                c.chunks[0] = c.len;
                c.nchunks = 1;
                memcpy(c.tag, tag, 16);
                if (wrong)
                    c.tag[t == 0 ? 0 : t > 16 ? 15 : t - 1] ^= 0x80;
                c.taglen = t;
                c.via_params = via;
                c.tag_early = (int)(t & 1);
                tg.ours = 1;
                run_case(ev_ref(), &c, &te);
                run_case(ev_ours(), &c, &tg);
                describe(desc, sizeof(desc), &c, r.s);
                ck_assert_msg(ev_trace_same(&te, &tg, desc), "%s wrong=%d", desc, wrong);
                ev_trace_free(&te);
                ev_trace_free(&tg);
            }
        }
    }
}
END_TEST

/* GCM with IV lengths other than 12, each direction, several lengths each. */
START_TEST(gcm_iv_lengths)
{
    const char *cipher = tu_ciphers[6 + _i];
    static const size_t ivlens[] = {1, 2, 8, 11, 12, 13, 16, 17, 32, 60, 64, 100, 127, 128};
    size_t k;
    int enc, bad = 0;

    for (k = 0; k < sizeof(ivlens) / sizeof(ivlens[0]); k++) {
        for (enc = 0; enc <= 1; enc++) {
            dcase c;
            ev_trace te = {0}, tg = {0};
            char desc[512];
            unsigned char tag[16];
            ev_rng r = {ev_case_seed(300 + (unsigned)k)};

            memset(&c, 0, sizeof(c));
            c.cipher = cipher;
            c.mode = EV_GCM;
            c.enc = 1;
            c.keylen = ev_keylen(cipher);
            ev_bytes(&r, c.key, 32);
            ev_bytes(&r, c.iv, 128);
            c.ivlen = ivlens[k];
            c.set_ivlen = 1;
            c.via_params = (int)(k & 1);
            c.len = 1 + ev_below(&r, 300);
            ev_bytes(&r, plain, c.len);
            c.in = plain;
            c.aadlen = ev_below(&r, 40);
            ev_bytes(&r, aadbuf, c.aadlen);
            c.aad = aadbuf;
            if (c.aadlen > 0) {
                c.aadchunks[0] = c.aadlen;
                c.naad = 1;
            }
            c.taglen = 16;
            if (!enc) {
                c.len = ref_encrypt(&c, cbuf, tag);
                memcpy(c.tag, tag, 16);
                c.in = cbuf;
                c.enc = 0;
            }
            split(&r, c.len, c.chunks, &c.nchunks, MAXCHUNKS, 0);
            tg.ours = 1;
            run_case(ev_ref(), &c, &te);
            run_case(ev_ours(), &c, &tg);
            describe(desc, sizeof(desc), &c, r.s);
            bad += !ev_trace_same(&te, &tg, desc);
            ev_trace_free(&te);
            ev_trace_free(&tg);
        }
    }
    ck_assert_msg(bad == 0, "%s: %d IV-length case(s) differ, see stderr", cipher, bad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evp_diff");
    TCase *tc = ev_tcase("random");

    tcase_add_loop_test(tc, random_cases, 0, 9);
    suite_add_tcase(s, tc);
    tc = ev_tcase("cbc_nopad");
    tcase_add_loop_test(tc, cbc_nopad_partial_fails, 0, 3);
    suite_add_tcase(s, tc);
    tc = ev_tcase("gcm");
    tcase_add_loop_test(tc, gcm_tag_lengths, 0, 3);
    tcase_add_loop_test(tc, gcm_iv_lengths, 0, 3);
    suite_add_tcase(s, tc);
    return ev_run(s);
}
