/* The fault-injection syntax and its environment variable (runs anywhere). */
#include "etest.h"

#include <errno.h>
#include <stdlib.h>

START_TEST(parse_rules)
{
    struct kaio_fault_rule r[KAIO_FAULT_MAX_RULES];

    ck_assert_int_eq(kaio_fault_parse("io_submit=short:2,read=EBADMSG:3", r, 16), 2);
    ck_assert_int_eq(r[0].call, KAIO_F_IO_SUBMIT);
    ck_assert_int_eq(r[0].err, KAIO_FAULT_SHORT);
    ck_assert_uint_eq(r[0].first, 2);
    ck_assert_uint_eq(r[0].count, 1);
    ck_assert_int_eq(r[1].call, KAIO_F_READ);
    ck_assert_int_eq(r[1].err, EBADMSG);
    ck_assert_uint_eq(r[1].first, 3);

    ck_assert_int_eq(kaio_fault_parse("accept=EMFILE", r, 16), 1);
    ck_assert_uint_eq(r[0].first, 1);
    ck_assert_uint_eq(r[0].count, 1);
    ck_assert_int_eq(kaio_fault_parse("sendmsg=EAGAIN:2:0", r, 16), 1);
    ck_assert_uint_eq(r[0].first, 2);
    ck_assert_uint_eq(r[0].count, 0);
    ck_assert_int_eq(kaio_fault_parse("", r, 16), 0);
    ck_assert_int_eq(kaio_fault_parse(NULL, r, 16), 0);
}
END_TEST

START_TEST(parse_errors)
{
    struct kaio_fault_rule r[KAIO_FAULT_MAX_RULES];
    static const char *const bad[] = {
        "io_submit", "io_submit=", "nosuch=EBUSY", "read=ENOTANERRNO", "read=short",
        "read=EBUSY:0", "read=EBUSY:x", "read=EBUSY:1:", "read=EBUSY:1:2:3", "read=EBUSY,",
        ",read=EBUSY", "read=EBUSY:99999999999",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(kaio_fault_parse(bad[i], r, 16) == -1, "accepted \"%s\"", bad[i]);
    ck_assert_int_eq(kaio_fault_parse("read=EIO,read=EIO", r, 1), -1);
    ck_assert_int_eq(kaio_fault_set("read=bogus"), -1);
}
END_TEST

/* Faults reach the probe's syscalls: usable on a host without AF_ALG too. */
START_TEST(set_and_hit)
{
    const struct kaio_caps *c;

    ck_assert_int_eq(kaio_fault_set("socket=EPERM:1:0,io_setup=ENOSYS"), 0);
    c = kaio_probe();
    ck_assert_int_eq(c->af_alg, 0);
    ck_assert_int_eq(c->af_alg_err, EPERM);
    ck_assert_int_eq(c->aio, 0);
    ck_assert_int_eq(c->aio_err, ENOSYS);
    ck_assert_uint_ge(kaio_fault_hits(), 2);
    ck_assert_int_eq(kaio_fault_set(NULL), 0);
    ck_assert_uint_eq(kaio_fault_hits(), 0);
}
END_TEST

START_TEST(from_environment)
{
    const struct kaio_caps *c;
    enum kaio_reason why;
    int err;

    /* Read once, at the engine's first syscall. */
    setenv("KCAPI_AIO_FAULT", "socket=EMFILE:1:0", 1);
    c = kaio_probe();
    ck_assert_int_eq(c->af_alg_err, EMFILE);
    ck_assert_uint_ge(kaio_fault_hits(), 1);
    ck_assert_ptr_null(kaio_key_new(KAIO_CBC, (const unsigned char *)"0123456789abcdef", 16, &why, &err));
    ck_assert_int_eq(why, KAIO_R_FD_BUDGET);
    ck_assert_int_eq(err, EMFILE);
}
END_TEST

START_TEST(bad_environment_ignored)
{
    setenv("KCAPI_AIO_FAULT", "socket=nonsense", 1);
    kaio_probe();
    ck_assert_uint_eq(kaio_fault_hits(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_faultspec");
    TCase *t = tcase_create("spec");

    unsetenv("KCAPI_AIO_FAULT");
    tcase_add_test(t, parse_rules);
    tcase_add_test(t, parse_errors);
    tcase_add_test(t, set_and_hit);
    tcase_add_test(t, from_environment);
    tcase_add_test(t, bad_environment_ignored);
    suite_add_tcase(s, t);
    return et_main(s, NULL);
}
