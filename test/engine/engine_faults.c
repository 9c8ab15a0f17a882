/* Injected faults during real batches: short io_submit, EAGAIN/EBUSY/EINTR
 * retries, a failed io_submit or io_setup (-> sync), read errors that fail
 * one op only, EMFILE and the fd budget. Needs AF_ALG. */
#include "etest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kaio_key *batch(struct et_batch *b, enum kaio_mode mode, size_t n)
{
    struct et_shape sh = { -1, -1, 160, 16, 16, 0 };

    et_need_kernel("engine_faults");
    et_make(b, mode, 16, n, &sh);
    return et_key(b);
}

static void faults(const char *spec)
{
    ck_assert_msg(kaio_fault_set(spec) == 0, "bad spec %s", spec);
}

START_TEST(short_submit)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CBC, 16);
    struct kaio_counters c;

    faults("io_submit=short:1:0");
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "every io_submit short");
    /* 16 -> 8 + 4 + 2 + 1 + 1: all resubmitted, all through AIO. */
    ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 5);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_AIO], 16);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(submit_retries)
{
    static const char *const specs[] = { "io_submit=EAGAIN:1:3", "io_submit=EBUSY:1:2",
                                         "io_submit=EINTR:1:4", "io_getevents=EINTR:1:2" };
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_GCM, 8);
    struct kaio_counters c;

    faults(specs[_i]);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, specs[_i]);
    ck_assert_uint_ge(kaio_fault_hits(), 2);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_AIO], 8);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(submit_fails_runs_sync)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CTR, 6);
    struct kaio_counters c;
    size_t i;

    faults("io_submit=EINVAL:1:0");
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "io_submit refused");
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SYNC], 6);
    ck_assert_uint_eq(c.fallback[KAIO_R_AIO_UNAVAILABLE], 6);
    /* This thread's context is given up: later batches go sync directly. */
    for (i = 0; i < b.n; i++)
        et_reref(&b, i);
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "after");
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SYNC], 6);
    ck_assert_uint_eq(kaio_fault_hits(), 1);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(io_setup_fails)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CBC, 4);
    struct kaio_counters c;

    faults(_i ? "io_setup=EAGAIN" : "io_setup=ENOSYS");
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "no AIO context");
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SYNC], 4);
    ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 0);
    ck_assert_uint_eq(c.fallback[KAIO_R_AIO_UNAVAILABLE], 4);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(sendmsg_retries)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CBC, 8);

    faults(_i ? "sendmsg=EBUSY:2:3" : "sendmsg=EAGAIN:1:5");
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, _i ? KAIO_PATH_SYNC : KAIO_PATH_AIO), 0);
    et_check(&b, "sendmsg retried");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(sendmsg_gives_up)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CTR, 3);
    size_t i;

    faults("sendmsg=EAGAIN:1:0");
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 3);
    for (i = 0; i < b.n; i++) {
        ck_assert_int_eq(b.ops[i].status, KAIO_NOT_RUN);
        ck_assert_int_eq(b.ops[i].reason, KAIO_R_KERNEL_ERROR);
        ck_assert_int_eq(b.ops[i].err, EAGAIN);
    }
    faults(NULL);
    for (i = 0; i < b.n; i++)
        et_reref(&b, i);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    et_check(&b, "after the faults end");
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(read_ebadmsg_one_op)
{
    enum kaio_path path = _i ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_shape sh = { 0, -1, 100, 16, 16, 0 };
    struct et_batch b;
    struct kaio_key *k;
    size_t i, bad = 0;

    et_need_kernel("engine_faults");
    et_make(&b, KAIO_GCM, 16, 6, &sh);
    k = et_key(&b);
    faults("read=EBADMSG:3");
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
    for (i = 0; i < b.n; i++) {
        if (b.ops[i].status == KAIO_EBADMSG) {
            bad++;
            /* Read faults are taken in op order on both paths. */
            ck_assert_uint_eq(i, 2);
            continue;
        }
        et_check_op(&b, i, "others");
    }
    ck_assert_uint_eq(bad, 1);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(read_errors)
{
    enum kaio_path path = _i % 2 ? KAIO_PATH_SYNC : KAIO_PATH_AIO;
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CBC, 5);
    size_t i, failed = 0;

    if (_i < 2) {
        /* A read that did not run is redone on a fresh socket. */
        faults("read=EAGAIN:2:2");
        ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 0);
        et_check(&b, "read EAGAIN");
    } else {
        faults("read=EIO:4");
        ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, path), 1);
        for (i = 0; i < b.n; i++) {
            if (b.ops[i].status == KAIO_NOT_RUN) {
                ck_assert_int_eq(b.ops[i].reason, KAIO_R_KERNEL_ERROR);
                ck_assert_int_eq(b.ops[i].err, EIO);
                failed++;
                continue;
            }
            et_check_op(&b, i, "others");
        }
        ck_assert_uint_eq(failed, 1);
    }
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(accept_emfile_rounds)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_GCM, 8);
    struct kaio_counters c;
    unsigned tfms, ops;

    /* One op socket, then no more fds: the batch runs in rounds on it. */
    faults("accept=EMFILE:2:0");
    kaio_counters_reset();
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    kaio_counters_get(&c);
    et_check(&b, "rounds on one socket");
    kaio_key_sockets(k, &tfms, &ops);
    ck_assert_uint_eq(ops, 1);
    ck_assert_uint_eq(c.c[KAIO_C_IO_SUBMIT], 8);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(accept_emfile_none)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CBC, 3);
    size_t i;

    faults("accept=ENFILE:1:0");
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 3);
    for (i = 0; i < b.n; i++)
        ck_assert_int_eq(b.ops[i].reason, KAIO_R_FD_BUDGET);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(socket_emfile)
{
    struct et_batch b;
    struct kaio_key *k = batch(&b, KAIO_CBC, 1);
    enum kaio_reason why;
    int err;

    faults("socket=EMFILE:1:0");
    ck_assert_ptr_null(kaio_key_new(KAIO_CTR, b.key, 16, &why, &err));
    ck_assert_int_eq(why, KAIO_R_FD_BUDGET);
    kaio_key_free(k);
    et_free(&b);
}
END_TEST

START_TEST(fd_budget)
{
    struct et_batch b;
    struct kaio_key *k, *k2;
    enum kaio_reason why;
    int err;
    unsigned tfms, ops;

    et_need_kernel("engine_faults");
    kaio_set_fd_budget(3);
    k = batch(&b, KAIO_CTR, 6);
    ck_assert_uint_eq(kaio_key_run(k, b.ops, b.n, KAIO_PATH_AIO), 0);
    et_check(&b, "within a budget of 3 fds");
    kaio_key_sockets(k, &tfms, &ops);
    ck_assert_uint_eq(tfms + ops, 3);
    ck_assert_uint_eq(kaio_fds_held(), 3);
    ck_assert_ptr_null(kaio_key_new(KAIO_CTR, b.key, 16, &why, &err));
    ck_assert_int_eq(why, KAIO_R_FD_BUDGET);
    kaio_key_free(k);
    ck_assert_uint_eq(kaio_fds_held(), 0);
    k2 = kaio_key_new(KAIO_CTR, b.key, 16, &why, &err);
    ck_assert_ptr_nonnull(k2);
    kaio_key_free(k2);
    kaio_set_fd_budget(0);
    et_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_faults");
    TCase *t = tcase_create("faults");

    tcase_set_timeout(t, 600);
    tcase_add_test(t, short_submit);
    tcase_add_loop_test(t, submit_retries, 0, 4);
    tcase_add_test(t, submit_fails_runs_sync);
    tcase_add_loop_test(t, io_setup_fails, 0, 2);
    tcase_add_loop_test(t, sendmsg_retries, 0, 2);
    tcase_add_test(t, sendmsg_gives_up);
    tcase_add_loop_test(t, read_ebadmsg_one_op, 0, 2);
    tcase_add_loop_test(t, read_errors, 0, 4);
    tcase_add_test(t, accept_emfile_rounds);
    tcase_add_test(t, accept_emfile_none);
    tcase_add_test(t, socket_emfile);
    tcase_add_test(t, fd_budget);
    suite_add_tcase(s, t);
    if (kaio_probe()->af_alg && !kaio_probe()->aio) {
        /* Most of these inject into io_submit/io_getevents. */
        printf("SKIP engine_faults: the kernel's AIO is unusable (%s)\n",
               strerror(kaio_probe()->aio_err));
        return ET_SKIP;
    }
    return et_main(s, "engine_faults");
}
