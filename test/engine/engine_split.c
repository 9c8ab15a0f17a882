/* Records larger than one kernel operation may carry: cut into chunks with
 * the IV chained in user space (CBC both ways, in place too; CTR across
 * 64- and 128-bit counter carries). Needs AF_ALG. */
#include "etest.h"

#include <stdlib.h>
#include <string.h>

static size_t chunks(size_t len, size_t chunk)
{
    return (len + chunk - 1) / chunk;
}

START_TEST(small_chunks)
{
    enum kaio_mode mode = _i / 2 ? KAIO_CTR : KAIO_CBC;
    enum kaio_path path = _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_shape sh = { -1, -1, 700, 0, 0, 1 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    size_t i, want = 0;

    et_need_kernel("engine_split");
    kaio_set_chunk_limit(64);
    et_make(&b, mode, 24, 12, &sh);
    for (i = 0; i < b.n; i++)
        want += chunks(b.ops[i].len, 64);
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    kaio_counters_get(&c);
    et_check(&b, "64-byte chunks");
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], want);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(ctr_carries)
{
    static const unsigned char starts[][16] = {
        { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe },
        { 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd },
        { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xfe },
    };
    struct et_shape sh = { 1, 0, 200, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    size_t i;

    et_need_kernel("engine_split");
    kaio_set_chunk_limit(32);
    et_make(&b, KAIO_CTR, 16, 3, &sh);
    for (i = 0; i < 3; i++) {
        memcpy(b.r[i].iv, starts[i], 16);
        b.ops[i].len = 16 * 6 + 5;
        et_reref(&b, i);
    }
    k = et_key(&b);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 3, KAIO_PATH_AIO), 0);
    et_check(&b, "counter carries");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* Past the real socket buffers, without the test cap. */
START_TEST(megabyte)
{
    enum kaio_mode mode = _i / 2 ? KAIO_CTR : KAIO_CBC;
    struct et_shape sh = { _i % 2, 1, 16, 0, 0, 0 };
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    size_t i, len = (1u << 20) + (mode == KAIO_CTR ? 7 : 0);

    et_need_kernel("engine_split");
    et_make(&b, mode, 32, 2, &sh);
    for (i = 0; i < 2; i++) {
        struct et_rec *r = &b.r[i];

        b.ops[i].len = len;
        r->orig = realloc(r->orig, len);
        if (r->out != r->in)
            free(r->out);
        r->in = r->out = realloc(r->in, len);
        r->ref = realloc(r->ref, len);
        b.ops[i].in = b.ops[i].out = r->in;
        tu_rand_bytes(r->orig, len);
        et_reref(&b, i);
    }
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, 2, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "1 MiB in place");
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], 2 * chunks(len, kaio_key_max_msg(k)));
    ck_assert_uint_gt(c.c[KAIO_C_KERNEL_OPS], 2);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_split");
    TCase *t = tcase_create("split");

    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, small_chunks, 0, 4);
    tcase_add_test(t, ctr_carries);
    tcase_add_loop_test(t, megabyte, 0, 4);
    suite_add_tcase(s, t);
    return et_main(s, "engine_split");
}
