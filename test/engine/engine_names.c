/* Names of the engine's enums and the counters' arithmetic (runs anywhere). */
#include "etest.h"

#include <pthread.h>
#include <string.h>

START_TEST(names_complete)
{
    int i;

    for (i = 0; i < KAIO_NREASONS; i++)
        ck_assert_str_ne(kaio_reason_name(i), "unknown");
    for (i = 0; i < KAIO_NCOUNTERS; i++)
        ck_assert_str_ne(kaio_counter_name(i), "unknown");
    ck_assert_str_eq(kaio_path_name(KAIO_PATH_AIO), "aio");
    ck_assert_str_eq(kaio_path_name(KAIO_PATH_SYNC), "sync");
    ck_assert_str_eq(kaio_path_name(KAIO_PATH_SOFTWARE), "software");
    ck_assert_str_eq(kaio_mode_name(KAIO_CBC), "cbc");
    ck_assert_str_eq(kaio_mode_name(KAIO_CTR), "ctr");
    ck_assert_str_eq(kaio_mode_name(KAIO_GCM), "gcm");
    ck_assert_str_eq(kaio_reason_name(KAIO_NREASONS), "unknown");
    ck_assert_str_eq(kaio_counter_name(KAIO_NCOUNTERS), "unknown");
    ck_assert_str_eq(kaio_counter_name(KAIO_C_SYSCALLS), "syscalls");
    ck_assert_str_eq(kaio_reason_name(KAIO_R_NO_AF_ALG), "kernel has no AF_ALG");
    for (i = 0; i < KAIO_F_NCALLS; i++)
        ck_assert_str_ne(kaio_fault_call_name(i), "unknown");
}
END_TEST

START_TEST(counters_add_reset)
{
    struct kaio_counters c;

    kaio_counters_reset();
    kaio_count(KAIO_C_OPS_SOFTWARE, 3);
    kaio_count(KAIO_C_BYTES_SOFTWARE, 100);
    kaio_count(KAIO_NCOUNTERS, 1); /* out of range: ignored */
    kaio_count_fallback(KAIO_R_FORCED, 2);
    kaio_count_fallback(KAIO_NREASONS, 2);
    kaio_counters_get(&c);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SOFTWARE], 3);
    ck_assert_uint_eq(c.c[KAIO_C_BYTES_SOFTWARE], 100);
    ck_assert_uint_eq(c.fallback[KAIO_R_FORCED], 2);
    kaio_counters_reset();
    kaio_counters_get(&c);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SOFTWARE], 0);
    ck_assert_uint_eq(c.fallback[KAIO_R_FORCED], 0);
}
END_TEST

/* Each thread counts into its own block: a read sees every living thread's
 * counts, and a thread's counts stay after it has ended. */
#define NTHR 4
#define PER_THREAD 1000

static pthread_barrier_t counted, may_end;

static void *count_thread(void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < PER_THREAD; i++) {
        kaio_count(KAIO_C_OPS_SOFTWARE, 1);
        kaio_count_fallback(KAIO_R_PATTERN, 2);
    }
    pthread_barrier_wait(&counted);
    pthread_barrier_wait(&may_end);
    return NULL;
}

START_TEST(counters_threads)
{
    pthread_t t[NTHR];
    struct kaio_counters c;
    int i;

    kaio_counters_reset();
    pthread_barrier_init(&counted, NULL, NTHR + 1);
    pthread_barrier_init(&may_end, NULL, NTHR + 1);
    for (i = 0; i < NTHR; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, count_thread, NULL), 0);
    pthread_barrier_wait(&counted);
    kaio_counters_get(&c); /* every thread alive, its block attached */
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SOFTWARE], NTHR * PER_THREAD);
    ck_assert_uint_eq(c.fallback[KAIO_R_PATTERN], 2 * NTHR * PER_THREAD);
    pthread_barrier_wait(&may_end);
    for (i = 0; i < NTHR; i++)
        pthread_join(t[i], NULL);
    kaio_counters_get(&c); /* every thread ended, its block folded into the totals */
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SOFTWARE], NTHR * PER_THREAD);
    ck_assert_uint_eq(c.fallback[KAIO_R_PATTERN], 2 * NTHR * PER_THREAD);
    kaio_counters_reset();
    kaio_counters_get(&c);
    ck_assert_uint_eq(c.c[KAIO_C_OPS_SOFTWARE], 0);
    pthread_barrier_destroy(&counted);
    pthread_barrier_destroy(&may_end);
}
END_TEST

/* A caller's own block: counted while attached, kept in the totals once detached. */
START_TEST(counters_block)
{
    struct kaio_count_block b;
    struct kaio_counters c;

    kaio_counters_reset();
    kaio_block_attach(&b);
    kaio_block_add(&b, KAIO_C_BYTES_SOFTWARE, 64);
    kaio_block_add(&b, KAIO_COUNT_FALLBACK(KAIO_R_NO_AF_ALG), 1);
    kaio_count(KAIO_C_BYTES_SOFTWARE, 16); /* the thread's own block */
    kaio_counters_get(&c);
    ck_assert_uint_eq(c.c[KAIO_C_BYTES_SOFTWARE], 80);
    ck_assert_uint_eq(c.fallback[KAIO_R_NO_AF_ALG], 1);
    kaio_block_detach(&b);
    kaio_block_detach(&b); /* twice: no double count */
    kaio_counters_get(&c);
    ck_assert_uint_eq(c.c[KAIO_C_BYTES_SOFTWARE], 80);
    kaio_block_attach(&b); /* attached again: starts from zero */
    kaio_counters_get(&c);
    ck_assert_uint_eq(c.c[KAIO_C_BYTES_SOFTWARE], 80);
    kaio_block_detach(&b);
}
END_TEST

START_TEST(syscalls_counted)
{
    struct kaio_counters c;

    /* The probe makes syscalls (socket, io_setup...), and every one counts. */
    kaio_counters_reset();
    kaio_probe();
    kaio_counters_get(&c);
    ck_assert_uint_gt(c.c[KAIO_C_SYSCALLS], 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_names");
    TCase *t = tcase_create("names");

    tcase_add_test(t, names_complete);
    tcase_add_test(t, counters_add_reset);
    tcase_add_test(t, counters_threads);
    tcase_add_test(t, counters_block);
    tcase_add_test(t, syscalls_counted);
    suite_add_tcase(s, t);
    return et_main(s, NULL);
}
