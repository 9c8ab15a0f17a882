/* Batches of 1..32 independent ops, every mode and key size, in place and
 * not, AIO and sync, against libcrypto. Needs AF_ALG. */
#include "etest.h"

#include <stdio.h>
#include <string.h>

static const size_t keylens[] = { 16, 24, 32 };

static void run_one(enum kaio_mode mode, size_t keylen, size_t n, enum kaio_path path,
                    const struct et_shape *sh)
{
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    char what[64];
    size_t i, nonempty = 0;

    et_make(&b, mode, keylen, n, sh);
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, n, path), 0);
    kaio_counters_get(&c);
    snprintf(what, sizeof(what), "%s n=%zu", kaio_path_name(path), n);
    et_check(&b, what);
    for (i = 0; i < n; i++)
        nonempty += b.ops[i].len > 0 || mode == KAIO_GCM;
    /* One kernel operation per non-empty record, and the path is visible. */
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], nonempty);
    /* Where the kernel has no usable AIO (lab scenario no-aio) it runs sync. */
    if (path == KAIO_PATH_AIO && nonempty > 0 && kaio_probe()->aio) {
        ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 1);
        ck_assert_uint_eq(c.c[KAIO_C_OPS_AIO], nonempty);
        ck_assert_uint_eq(c.c[KAIO_C_BATCHES_AIO], 1);
    } else if (nonempty > 0) {
        ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 0);
        ck_assert_uint_eq(c.c[KAIO_C_OPS_SYNC], nonempty);
        ck_assert_uint_eq(c.c[KAIO_C_BATCHES_SYNC], 1);
    }
    /* Running the same key again reuses its op sockets. */
    for (i = 0; i < n; i++)
        et_reref(&b, i);
    if (mode != KAIO_GCM) {
        ck_assert_uint_eq(kaio_key_run(k, b.ops, n, path), 0);
        et_check(&b, "again");
    }
    kaio_key_free(k);
    et_free(&b);
}

START_TEST(all_modes_sizes)
{
    enum kaio_mode mode = (enum kaio_mode)(_i / 6);
    size_t keylen = keylens[(_i / 2) % 3];
    enum kaio_path path = _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    static const size_t ns[] = { 1, 2, 3, 7, 16, 32 };
    struct et_shape sh = { -1, -1, 600, 48, 0, 0 };
    size_t i;

    et_need_kernel("engine_cipher");
    for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        run_one(mode, keylen, ns[i], path, &sh);
}
END_TEST

START_TEST(every_batch_size)
{
    enum kaio_mode mode = (enum kaio_mode)_i;
    struct et_shape sh = { -1, -1, 100, 20, 16, 1 };
    size_t n;

    et_need_kernel("engine_cipher");
    for (n = 1; n <= KAIO_MAX_BATCH; n++)
        run_one(mode, 16, n, KAIO_PATH_AIO, &sh);
}
END_TEST

/* More than KAIO_MAX_BATCH in one call is cut into batches, not refused. */
START_TEST(oversized_call)
{
    struct et_shape sh = { 1, 0, 64, 0, 0, 0 };
    struct et_batch b1, b2;
    struct kaio_op ops[40];
    struct kaio_key *k;
    size_t i;

    et_need_kernel("engine_cipher");
    et_make(&b1, KAIO_CTR, 16, 32, &sh);
    et_make(&b2, KAIO_CTR, 16, 8, &sh);
    memcpy(b2.key, b1.key, 16);
    for (i = 0; i < 8; i++)
        et_reref(&b2, i);
    memcpy(ops, b1.ops, sizeof(b1.ops));
    memcpy(ops + 32, b2.ops, 8 * sizeof(ops[0]));
    k = et_key(&b1);
    ck_assert_uint_eq(kaio_key_run(k, ops, 40, KAIO_PATH_AIO), 0);
    memcpy(b1.ops, ops, sizeof(b1.ops));
    memcpy(b2.ops, ops + 32, 8 * sizeof(ops[0]));
    et_check(&b1, "first 32");
    et_check(&b2, "last 8");
    kaio_key_free(k);
    et_free(&b1);
    et_free(&b2);
}
END_TEST

START_TEST(empty_records)
{
    struct et_shape sh = { -1, 0, 0, 0, 0, 1 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;

    et_need_kernel("engine_cipher");
    et_make(&b, _i ? KAIO_CTR : KAIO_CBC, 16, 4, &sh);
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 4, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    /* CBC/CTR with no data never reach the kernel. */
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], 0);
    ck_assert_uint_eq(c.c[KAIO_C_SYSCALLS], 0);
    et_check(&b, "empty");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(bad_ops_not_run)
{
    struct et_shape sh = { 1, 0, 64, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;

    et_need_kernel("engine_cipher");
    et_make(&b, KAIO_CBC, 16, 3, &sh);
    b.ops[0].len = 17; /* CBC needs whole blocks */
    b.ops[1].ivlen = 8;
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 3, KAIO_PATH_SYNC), 2);
    ck_assert_int_eq(b.ops[0].status, KAIO_NOT_RUN);
    ck_assert_int_eq(b.ops[0].reason, KAIO_R_KERNEL_ERROR);
    ck_assert_int_eq(b.ops[1].status, KAIO_NOT_RUN);
    ck_assert_int_eq(b.ops[1].reason, KAIO_R_IV_LENGTH);
    et_check_op(&b, 2, "the good one");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(aio_disabled_runs_sync)
{
    struct et_shape sh = { -1, -1, 200, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;

    et_need_kernel("engine_cipher");
    et_make(&b, KAIO_CBC, 32, 5, &sh);
    k = et_key(&b);
    kaio_set_aio_disabled(1);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 5, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    kaio_set_aio_disabled(0);
    et_check(&b, "aio hidden");
    ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 0);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SYNC], 5);
    ck_assert_uint_eq(c.fallback[KAIO_R_AIO_UNAVAILABLE], 5);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* CBC decryptions of a batch as one kernel operation: same bytes, fewer
 * kernel operations. */
START_TEST(coalesced_cbc_decrypt)
{
    size_t n = 1 + (size_t)_i * 31 / 7, i, enc = 0, dec = 0;
    struct et_shape sh = { -1, -1, 300, 0, 0, 1 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;

    kaio_set_coalesce(1);
    if (_i == 7)
        kaio_set_chunk_limit(1024); /* several groups, and splits */
    et_make(&b, KAIO_CBC, 16 + 8 * (size_t)(_i % 3), n, &sh);
    for (i = 0; i < n; i++) {
        enc += b.ops[i].encrypt && b.ops[i].len;
        dec += !b.ops[i].encrypt && b.ops[i].len;
    }
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, n, _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "coalesced");
    if (_i < 7)
        ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], enc + (dec >= 2 ? 1 : dec));
    printf("coalesce: %zu records (%zu decrypt) in %llu kernel operations\n", n, dec,
           (unsigned long long)c.c[KAIO_C_KERNEL_OPS]);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_cipher");
    TCase *t = tcase_create("cipher");

    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, all_modes_sizes, 0, 18);
    tcase_add_loop_test(t, every_batch_size, 0, 3);
    tcase_add_test(t, oversized_call);
    tcase_add_loop_test(t, empty_records, 0, 2);
    tcase_add_test(t, bad_ops_not_run);
    tcase_add_test(t, aio_disabled_runs_sync);
    tcase_add_loop_test(t, coalesced_cbc_decrypt, 0, 8);
    suite_add_tcase(s, t);
    return et_main(s, "engine_cipher");
}
