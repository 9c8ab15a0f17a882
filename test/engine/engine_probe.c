/* The capability probe: what it reports here (host: no AF_ALG; kernel lab:
 * all three algorithms and AIO), caching, the fork redo, hiding AIO. */
#include "etest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void print_caps(const struct kaio_caps *c)
{
    int m;

    printf("probe: af_alg=%d (%s) aio=%d (%s)\n", c->af_alg, strerror(c->af_alg_err), c->aio,
           strerror(c->aio_err));
    for (m = 0; m < KAIO_NMODES; m++)
        printf("probe: %s available=%d driver=\"%s\" class=%s%s reason=\"%s\" err=%s\n", c->mode[m].alg,
               c->mode[m].available, c->mode[m].driver, kaio_driver_class_name(c->mode[m].drv_class),
               c->mode[m].drv_known ? "" : " (not recognised)", kaio_reason_name(c->mode[m].reason),
               strerror(c->mode[m].err));
    fflush(stdout);
}

START_TEST(reports)
{
    const struct kaio_caps *c = kaio_probe();
    static const char *const algs[] = { "cbc(aes)", "ctr(aes)", "gcm(aes)" };
    int m;

    print_caps(c);
    for (m = 0; m < KAIO_NMODES; m++)
        ck_assert_str_eq(c->mode[m].alg, algs[m]);
    if (!c->af_alg) {
        /* This development host: no AF_ALG, every mode says why. */
        ck_assert_int_ne(c->af_alg_err, 0);
        for (m = 0; m < KAIO_NMODES; m++) {
            ck_assert_int_eq(c->mode[m].available, 0);
            ck_assert_int_eq(c->mode[m].reason, KAIO_R_NO_AF_ALG);
            ck_assert_int_eq(c->mode[m].err, c->af_alg_err);
            ck_assert_str_eq(c->mode[m].driver, "");
            ck_assert_int_eq(c->mode[m].drv_class, KAIO_DRV_NONE);
        }
        return;
    }
    for (m = 0; m < KAIO_NMODES; m++) {
        const char *s = getenv("KLAB_SCENARIO");
        int device = s != NULL && strcmp(s, "device") == 0 && m == KAIO_CBC && getenv("KLAB_KERNEL") != NULL
                     && strcmp(getenv("KLAB_KERNEL"), "7.2") != 0;

        ck_assert_msg(c->mode[m].available, "%s: %s", algs[m], strerror(c->mode[m].err));
        ck_assert_msg(c->mode[m].driver[0] != '\0', "%s: no driver found", algs[m]);
        /* The lab's drivers: AES-NI or C everywhere, but the device's CBC (not on 7.2). */
        if (s != NULL) {
            ck_assert_msg(c->mode[m].drv_class == (device ? KAIO_DRV_DEVICE : KAIO_DRV_CPU) && c->mode[m].drv_known,
                          "%s: driver %s classified %s", algs[m], c->mode[m].driver,
                          kaio_driver_class_name(c->mode[m].drv_class));
            ck_assert_uint_eq(c->mode[m].op_cap, device ? KAIO_DEVICE_MAX_OP : 0);
        }
    }
    if (getenv("KLAB_SCENARIO") != NULL && strcmp(getenv("KLAB_SCENARIO"), "no-aio") == 0) {
        /* fs.aio-max-nr = 0: io_setup fails with EAGAIN. */
        ck_assert_int_eq(c->aio, 0);
        ck_assert_int_eq(c->aio_err, EAGAIN);
        return;
    }
    ck_assert_msg(c->aio, "AIO probe failed: %s", strerror(c->aio_err));
}
END_TEST

START_TEST(host_key_fails_with_reason)
{
    const struct kaio_caps *c = kaio_probe();
    unsigned char key[32] = { 1 };
    enum kaio_reason why = KAIO_R_NONE;
    int err = 0, m;

    if (c->af_alg)
        return; /* the kernel-lab tests cover keys */
    for (m = 0; m < KAIO_NMODES; m++) {
        ck_assert_ptr_null(kaio_key_new(m, key, 16, &why, &err));
        ck_assert_int_eq(why, KAIO_R_NO_AF_ALG);
        ck_assert_int_eq(err, c->af_alg_err);
    }
    kaio_key_free(NULL);
}
END_TEST

START_TEST(bad_key_length)
{
    unsigned char key[32] = { 1 };
    enum kaio_reason why = KAIO_R_NONE;
    int err = 0;

    ck_assert_ptr_null(kaio_key_new(KAIO_CBC, key, 15, &why, &err));
    ck_assert_int_eq(why, KAIO_R_KERNEL_ERROR);
    ck_assert_int_eq(err, EINVAL);
    ck_assert_ptr_null(kaio_key_new(KAIO_NMODES, key, 16, &why, &err));
}
END_TEST

START_TEST(cached)
{
    const struct kaio_caps *a = kaio_probe(), *b;
    struct kaio_counters c;

    kaio_counters_reset();
    b = kaio_probe();
    kaio_counters_get(&c);
    ck_assert_ptr_eq(a, b);
    ck_assert_uint_eq(c.c[KAIO_C_SYSCALLS], 0);
}
END_TEST

START_TEST(aio_hidden)
{
    int raw = kaio_probe()->aio;

    kaio_set_aio_disabled(1);
    ck_assert_int_eq(kaio_probe()->aio, 0);
    kaio_set_aio_disabled(0);
    ck_assert_int_eq(kaio_probe()->aio, raw);
}
END_TEST

START_TEST(redone_in_child)
{
    struct kaio_caps parent = *kaio_probe();
    int st = 0;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct kaio_counters c;
        const struct kaio_caps *ch;

        kaio_counters_reset();
        ch = kaio_probe();
        kaio_counters_get(&c);
        /* A child probes for itself (its own syscalls), and finds the same. */
        _exit(c.c[KAIO_C_SYSCALLS] > 0 && ch->af_alg == parent.af_alg && ch->aio == parent.aio &&
                      memcmp(ch->mode, parent.mode, sizeof(parent.mode)) == 0
                  ? 0
                  : 1);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_probe");
    TCase *t = tcase_create("probe");

    tcase_add_test(t, reports);
    tcase_add_test(t, host_key_fails_with_reason);
    tcase_add_test(t, bad_key_length);
    tcase_add_test(t, cached);
    tcase_add_test(t, aio_hidden);
    tcase_add_test(t, redone_in_child);
    suite_add_tcase(s, t);
    return et_main(s, NULL);
}
