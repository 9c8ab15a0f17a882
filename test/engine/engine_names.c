/* Names of the engine's enums and the counters' arithmetic (runs anywhere). */
#include "etest.h"

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
    tcase_add_test(t, syscalls_counted);
    suite_add_tcase(s, t);
    return et_main(s, NULL);
}
