/* GCM specifics: a tag failure fails only its op, tag and IV lengths the
 * kernel refuses, messages with no data and/or no AAD, messages too large
 * for the socket buffers. Needs AF_ALG. */
#include "etest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(ebadmsg_isolated)
{
    enum kaio_path path = _i ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_shape sh = { 0, -1, 300, 40, 16, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    size_t i, bad[] = { 0, 3, 7 };

    et_need_kernel("engine_gcm");
    et_make(&b, KAIO_GCM, 16, 8, &sh);
    for (i = 0; i < 3; i++) {
        b.r[bad[i]].tag[5] ^= 0x40;
        b.r[bad[i]].ref_ok = 0;
    }
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 8, path), 0);
    kaio_counters_get(&c);
    et_check(&b, "three forged tags");
    ck_assert_uint_eq(c.c[KAIO_C_TAG_FAILURES], 3);
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], 8);

    /* The op sockets that saw EBADMSG are clean: the next batch is right. */
    {
        struct et_batch b2;

        sh.encrypt = -1;
        et_make(&b2, KAIO_GCM, 16, 8, &sh);
        memcpy(b2.key, b.key, 16);
        for (i = 0; i < 8; i++)
            et_reref(&b2, i);
        ck_assert_uint_eq(kaio_key_run(k, b2.ops, 8, path), 0);
        et_check(&b2, "after failures");
        et_free(&b2);
    }
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(tag_lengths)
{
    struct et_shape sh = { 1, 0, 40, 10, 16, 0 };
    char accepted[64] = "";
    struct et_batch b;
    struct kaio_key *k;
    size_t t, enc;

    et_need_kernel("engine_gcm");
    et_make(&b, KAIO_GCM, 24, 2, &sh);
    k = et_key(&b);
    for (t = 1; t <= 16; t++) {
        /* The kernel's gcm accepts 4, 8 and 12..16 (as NIST SP 800-38D). */
        int valid = t == 4 || t == 8 || t >= 12;

        for (enc = 0; enc < 2; enc++) {
            b.ops[0].encrypt = (int)enc;
            b.ops[1].encrypt = 1;
            b.ops[0].taglen = t;
            b.ops[1].taglen = 16; /* a second tag length in the same batch */
            et_reref(&b, 0);
            et_reref(&b, 1);
            kaio_key_run(k, b.ops, 2, KAIO_PATH_AIO);
            et_check_op(&b, 1, "tag 16 next to another");
            if (valid) {
                et_check_op(&b, 0, "tag length");
            } else {
                ck_assert_int_eq(b.ops[0].status, KAIO_NOT_RUN);
                ck_assert_int_eq(b.ops[0].reason, KAIO_R_TAG_LENGTH);
            }
            if (!enc)
                et_reref(&b, 0); /* the decrypt turned orig into ciphertext */
        }
        if (b.ops[0].status == 0)
            snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted), " %zu", t);
    }
    printf("engine_gcm: tag lengths the kernel took:%s\n", accepted);
    b.ops[0].taglen = 0;
    kaio_key_run(k, b.ops, 1, KAIO_PATH_SYNC);
    ck_assert_int_eq(b.ops[0].reason, KAIO_R_TAG_LENGTH);
    b.ops[0].taglen = 17;
    kaio_key_run(k, b.ops, 1, KAIO_PATH_SYNC);
    ck_assert_int_eq(b.ops[0].reason, KAIO_R_TAG_LENGTH);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(iv_lengths)
{
    struct et_shape sh = { 1, 0, 40, 10, 16, 0 };
    static const size_t ivlens[] = { 0, 1, 8, 11, 13, 16 };
    struct et_batch b;
    struct kaio_key *k;
    size_t i;

    et_need_kernel("engine_gcm");
    et_make(&b, KAIO_GCM, 16, 2, &sh);
    k = et_key(&b);
    for (i = 0; i < sizeof(ivlens) / sizeof(ivlens[0]); i++) {
        b.ops[0].ivlen = ivlens[i];
        ck_assert_uint_eq(kaio_key_run(k, b.ops, 2, KAIO_PATH_AIO), 1);
        ck_assert_int_eq(b.ops[0].status, KAIO_NOT_RUN);
        ck_assert_int_eq(b.ops[0].reason, KAIO_R_IV_LENGTH);
        et_check_op(&b, 1, "next to a bad IV");
        et_reref(&b, 1);
    }
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* No data, no AAD, or neither: each is a valid AEAD message. */
START_TEST(empty_parts)
{
    enum kaio_path path = _i ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    static const size_t shapes[][2] = { { 0, 0 }, { 0, 20 }, { 33, 0 }, { 16, 0 }, { 0, 1 } };
    struct et_shape sh = { 1, 0, 40, 20, 16, 1 };
    struct et_batch b;
    struct kaio_key *k;
    size_t i, enc, n = sizeof(shapes) / sizeof(shapes[0]);

    et_need_kernel("engine_gcm");
    et_make(&b, KAIO_GCM, 32, n, &sh);
    k = et_key(&b);
    for (enc = 0; enc < 2; enc++) {
        for (i = 0; i < n; i++) {
            b.ops[i].len = shapes[i][0];
            b.ops[i].aadlen = shapes[i][1];
            b.ops[i].encrypt = (int)enc;
            tu_rand_bytes(b.r[i].orig, b.ops[i].len);
            et_reref(&b, i);
        }
        ck_assert_uint_eq(kaio_key_run(k, b.ops, n, path), 0);
        et_check(&b, enc ? "encrypt" : "decrypt");
        if (!enc) {
            /* Forged tags on the same shapes fail, each alone. */
            for (i = 0; i < n; i++) {
                b.r[i].tag[15] ^= 0x80;
                b.r[i].ref_ok = i % 2 == 0;
                if (i % 2 == 0)
                    b.r[i].tag[15] ^= 0x80;
                memcpy(b.r[i].in, b.r[i].orig, b.ops[i].len);
            }
            ck_assert_uint_eq(kaio_key_run(k, b.ops, n, path), 0);
            et_check(&b, "forged");
        }
    }
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(too_large)
{
    struct et_shape sh = { 1, 0, 16, 0, 16, 0 };
    struct et_batch b;
    struct kaio_key *k;
    size_t max, i;

    et_need_kernel("engine_gcm");
    et_make(&b, KAIO_GCM, 16, 2, &sh);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 1, KAIO_PATH_AIO), 0);
    max = kaio_key_max_msg(k);
    printf("engine_gcm: largest AEAD message = %zu bytes\n", max);
    ck_assert_uint_ge(max, 65536);
    ck_assert_uint_le(max, 256 * 1024);
    et_free(&b);
    /* One that just fits (aad + data + tag == max), and one byte more. */
    sh.maxlen = 0;
    et_make(&b, KAIO_GCM, 16, 2, &sh);
    for (i = 0; i < 2; i++) {
        struct et_rec *r = &b.r[i];

        b.ops[i].encrypt = (int)i;
        b.ops[i].aadlen = 100;
        b.ops[i].len = max - 100 - 16 + i;
        r->orig = realloc(r->orig, b.ops[i].len);
        if (r->out != r->in)
            free(r->out);
        r->in = realloc(r->in, b.ops[i].len);
        r->ref = realloc(r->ref, b.ops[i].len);
        r->out = r->in;
        r->aad = realloc(r->aad, 100);
        b.ops[i].in = r->in;
        b.ops[i].out = r->out;
        b.ops[i].aad = r->aad;
        tu_rand_bytes(r->orig, b.ops[i].len);
        tu_rand_bytes(r->aad, 100);
        et_reref(&b, i);
    }
    kaio_key_free(k);
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 2, KAIO_PATH_AIO), 1);
    et_check_op(&b, 0, "exactly the limit");
    ck_assert_int_eq(b.ops[1].status, KAIO_NOT_RUN);
    ck_assert_int_eq(b.ops[1].reason, KAIO_R_TOO_LARGE);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_gcm");
    TCase *t = tcase_create("gcm");

    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, ebadmsg_isolated, 0, 2);
    tcase_add_test(t, tag_lengths);
    tcase_add_test(t, iv_lengths);
    tcase_add_loop_test(t, empty_parts, 0, 2);
    tcase_add_test(t, too_large);
    suite_add_tcase(s, t);
    return et_main(s, "engine_gcm");
}
