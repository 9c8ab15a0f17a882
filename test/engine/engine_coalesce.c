/* CTR batches as ecb(aes) keystream (kaio_set_coalesce): random batches with
 * counters that wrap 2^32, 2^64 and 2^128 inside a record, lengths 0..15 and
 * partial last blocks, in place and not, against libcrypto; fewer kernel
 * operations than records; silent fallback when ecb(aes) is unusable.
 * Needs AF_ALG. */
#include "etest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_MAX (64u * 1024) /* keystream per ecb operation, as in aio/run.c */

static int require_kernel(void)
{
    const char *v = getenv("KAIO_REQUIRE_KERNEL");

    return v != NULL && strcmp(v, "1") == 0;
}

/* Puts record i's counter where it wraps inside the record (kind 1..3), or
 * leaves it random (0); the reference follows. */
static void wrap_counter(struct et_batch *b, size_t i, unsigned kind)
{
    unsigned char *iv = b->r[i].iv;
    size_t blocks = (b->ops[i].len + 15) / 16, back = blocks > 1 ? tu_rand_below(blocks) : 0;

    switch (kind) {
    case 1: /* low 32 bits */
        memset(iv + 12, 0xff, 4);
        break;
    case 2: /* low 64 bits: the carry crosses into the upper half */
        memset(iv + 8, 0xff, 8);
        break;
    case 3: /* all 128 bits: wraps to zero */
        memset(iv, 0xff, 16);
        break;
    default:
        et_reref(b, i);
        return;
    }
    iv[15] = (unsigned char)(0xff - back);
    et_reref(b, i);
}

struct expect {
    size_t records, need; /* non-empty records, keystream bytes */
};

static struct expect expect_of(const struct et_batch *b)
{
    struct expect e = { 0, 0 };
    size_t i;

    for (i = 0; i < b->n; i++)
        if (b->ops[i].len) {
            e.records++;
            e.need += (b->ops[i].len + 15) / 16 * 16;
        }
    return e;
}

/* ecb(aes) operations a coalesced batch takes with at most lim bytes each. */
static size_t ecb_ops(size_t need, size_t lim)
{
    lim = lim && lim < KS_MAX ? lim : KS_MAX;
    lim -= lim % 16;
    return (need + lim - 1) / lim;
}

static int ecb_bound(const struct kaio_key *k)
{
    unsigned tfms = 0, ops = 0;

    kaio_key_sockets(k, &tfms, &ops);
    return tfms == 2;
}

/* Runs b coalesced on path; checks bytes and counters. */
static void run_checked(struct et_batch *b, struct kaio_key *k, enum kaio_path path, size_t lim,
                        const char *what)
{
    struct expect e = expect_of(b);
    struct kaio_counters c;
    size_t i;

    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b->ops, b->n, path), 0);
    kaio_counters_get(&c);
    et_check(b, what);
    /* Without AIO (the lab's no-aio scenario) an uncoalesced AIO batch says so: that is not this test's business. */
    for (i = 0; i < KAIO_NREASONS; i++)
        if (i != KAIO_R_AIO_UNAVAILABLE)
            ck_assert_uint_eq(c.fallback[i], 0);
    if (e.records < 2) {
        /* A lone record is not coalesced, but a chunk limit still splits it. */
        ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], lim && e.records ? ecb_ops(e.need, lim) : e.records);
        return;
    }
    if (!ecb_bound(k)) {
        ck_assert_msg(!require_kernel(), "%s: ecb(aes) not bound in the kernel lab", what);
        ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], e.records);
        return;
    }
    /* Records that shared a kernel operation are counted as such, kernel operations as they are. */
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], ecb_ops(e.need, lim));
    ck_assert_uint_eq(c.c[KAIO_C_OPS_COALESCED], e.records);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SYNC], 0);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_AIO], 0);
    ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 0);
    ck_assert_uint_eq(c.c[KAIO_C_BATCHES_SYNC], 1);
    if (e.need <= (lim ? lim : KS_MAX))
        ck_assert_uint_lt(c.c[KAIO_C_KERNEL_OPS], e.records);
}

static void make_batch(struct et_batch *b, size_t keylen, size_t n, size_t maxlen, int wrap)
{
    struct et_shape sh = { -1, -1, maxlen, 0, 0, 1 };
    size_t i;

    et_make(b, KAIO_CTR, keylen, n, &sh);
    for (i = 0; i < n; i++)
        wrap_counter(b, i, wrap ? (unsigned)tu_rand_below(4) : 0);
}

START_TEST(random_batches)
{
    static const size_t keylens[] = { 16, 24, 32 };
    static const size_t maxlens[] = { 17, 600, 4000 };
    enum kaio_path path = _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    size_t n = 2 + (size_t)_i * 13 % (KAIO_MAX_BATCH - 1), i; /* forked tests share a seed */

    et_need_kernel("engine_coalesce");
    kaio_set_coalesce(1);
    make_batch(&b, keylens[_i % 3], n, maxlens[(_i / 2) % 3], 1);
    k = et_key(&b);
    run_checked(&b, k, path, 0, "coalesced");
    /* Again on the same key: sockets and scratch reused, two syscalls per
     * ecb operation and one to prove the ecb socket still ours. */
    for (i = 0; i < n; i++)
        et_reref(&b, i);
    run_checked(&b, k, path, 0, "again");
    kaio_counters_get(&c);
    if (ecb_bound(k) && expect_of(&b).records >= 2)
        ck_assert_uint_eq(c.c[KAIO_C_SYSCALLS], 2 * c.c[KAIO_C_KERNEL_OPS] + 1);
    printf("ctr coalesce: %zu records, %llu kernel operations\n", expect_of(&b).records,
           (unsigned long long)c.c[KAIO_C_KERNEL_OPS]);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* Small per-operation caps: records span ecb operations, some several. */
START_TEST(records_span_operations)
{
    static const size_t lims[] = { 16, 64, 256, 1024 };
    size_t lim = lims[_i % 4], n = 2 + (size_t)_i * 11 % (KAIO_MAX_BATCH - 1);
    struct et_batch b;
    struct kaio_key *k;

    et_need_kernel("engine_coalesce");
    kaio_set_coalesce(1);
    kaio_set_chunk_limit(lim);
    make_batch(&b, 16 + 8 * (size_t)(_i % 3), n, lim * 3 + 40, 1);
    k = et_key(&b);
    run_checked(&b, k, _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO, lim, "spanning");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* Keystream beyond one ecb operation's share, no test cap. */
START_TEST(large_records)
{
    struct et_batch b;
    struct kaio_key *k;

    et_need_kernel("engine_coalesce");
    kaio_set_coalesce(1);
    make_batch(&b, 32, 3, 70000, 0);
    b.ops[0].len = 70000;
    b.ops[1].len = 5;
    b.ops[2].len = 69999;
    wrap_counter(&b, 0, 2);
    wrap_counter(&b, 1, 0);
    wrap_counter(&b, 2, 3);
    k = et_key(&b);
    run_checked(&b, k, KAIO_PATH_AIO, 0, "large");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* Coalescing off, or a batch of one: one ctr(aes) operation per record. */
START_TEST(not_coalesced)
{
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    struct expect e;
    unsigned tfms, ops;

    et_need_kernel("engine_coalesce");
    kaio_set_coalesce(_i);
    make_batch(&b, 16, _i ? 1 : 12, 300, 1);
    if (_i)
        b.ops[0].len = 200;
    et_reref(&b, 0);
    e = expect_of(&b);
    k = et_key(&b);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_SYNC), 0);
    kaio_counters_get(&c);
    et_check(&b, "per record");
    ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], e.records);
    kaio_key_sockets(k, &tfms, &ops);
    ck_assert_uint_eq(tfms, 1); /* no ecb(aes) tfm made */
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* ecb(aes) cannot be bound: the ctr(aes) path runs, nothing counted as a
 * fallback, and the bind is not tried again. */
START_TEST(no_ecb_falls_back)
{
    struct et_batch b;
    struct kaio_key *k;
    struct kaio_counters c;
    size_t i;
    int rep;

    et_need_kernel("engine_coalesce");
    kaio_set_coalesce(1);
    make_batch(&b, 16, 9, 300, 1);
    k = et_key(&b);
    ck_assert_int_eq(kaio_fault_set(_i ? "setsockopt=EINVAL:1" : "bind=EPERM:1:0"), 0);
    for (rep = 0; rep < 2; rep++) {
        for (i = 0; i < b.n; i++)
            et_reref(&b, i);
        kaio_counters_reset();
        /* Sync: without AIO (lab scenario no-aio) the AIO path counts its own fallback. */
        ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_SYNC), 0);
        kaio_counters_get(&c);
        et_check(&b, "without ecb");
        ck_assert_uint_eq(c.c[KAIO_C_KERNEL_OPS], expect_of(&b).records);
        for (i = 0; i < KAIO_NREASONS; i++)
            ck_assert_uint_eq(c.fallback[i], 0);
    }
    ck_assert_uint_eq(kaio_fault_hits(), 1);
    ck_assert(!ecb_bound(k));
    kaio_fault_set(NULL);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

/* An ecb operation fails part way through a batch: the records done stay
 * done, the others (one of them half done) finish on the ctr(aes) path, and
 * the next batch coalesces again. */
START_TEST(ecb_failure_resumes)
{
    static const char *const specs[] = { "read=EIO:2", "read=EAGAIN:2", "sendmsg=EBUSY:2",
                                         "read=EIO:1", "sendmsg=EBADF:1" };
    struct et_batch b;
    struct kaio_key *k;
    size_t i;

    et_need_kernel("engine_coalesce");
    kaio_set_coalesce(1);
    kaio_set_chunk_limit(256);
    make_batch(&b, 16, 16, 700, 1);
    k = et_key(&b);
    ck_assert_int_eq(kaio_fault_set(specs[_i / 2]), 0);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO), 0);
    et_check(&b, specs[_i / 2]);
    ck_assert_uint_ge(kaio_fault_hits(), 1);
    kaio_fault_set(NULL);
    for (i = 0; i < b.n; i++)
        et_reref(&b, i);
    run_checked(&b, k, KAIO_PATH_AIO, 256, "after the failure");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_coalesce");
    TCase *t = tcase_create("ctr");

    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, random_batches, 0, 24);
    tcase_add_loop_test(t, records_span_operations, 0, 12);
    tcase_add_test(t, large_records);
    tcase_add_loop_test(t, not_coalesced, 0, 2);
    tcase_add_loop_test(t, no_ecb_falls_back, 0, 2);
    tcase_add_loop_test(t, ecb_failure_resumes, 0, 10);
    suite_add_tcase(s, t);
    return et_main(s, "engine_coalesce");
}
