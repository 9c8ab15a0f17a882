/*
 * The cpu_drivers setting: read from the provider's config section and from
 * KCAPI_AIO_CPU_DRIVERS, shown in the report; a bad value is a load error
 * that names the key. The same for KCAPI_AIO_ASYNC_BATCH. Runs anywhere (the
 * settings are read at load).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"
#include "testutil.h"

/* Loads kcapi-aio into a fresh context (from cnf when given); its report, or NULL with errs. */
static OSSL_LIB_CTX *load(const char *cnf_value, char *report, size_t cap, char *errs, size_t ecap)
{
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *p = NULL;
    OSSL_PARAM params[] = { OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_REPORT, report, cap), OSSL_PARAM_END };
    char path[] = "/tmp/kcapi-aio-test-config.XXXXXX";
    unsigned long e;

    ck_assert(lc != NULL);
    report[0] = errs[0] = '\0';
    ERR_clear_error();
    OSSL_PROVIDER_set_default_search_path(lc, tu_module_dir());
    if (cnf_value != NULL) {
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

        ck_assert(f != NULL);
        fprintf(f, "openssl_conf = init\n[init]\nproviders = provs\n[provs]\n%s = kca\n"
                   "[kca]\nmodule = %s/%s.so\nactivate = 1\n%s = %s\n",
                KCAPI_AIO_NAME, tu_module_dir(), KCAPI_AIO_NAME, KCAPI_AIO_CFG_CPU_DRIVERS, cnf_value);
        fclose(f);
        /* Activated by the config, or not at all (a second load would skip the config). */
        if (OSSL_LIB_CTX_load_config(lc, path) && OSSL_PROVIDER_available(lc, KCAPI_AIO_NAME))
            p = OSSL_PROVIDER_load(lc, KCAPI_AIO_NAME);
        unlink(path);
    } else {
        p = OSSL_PROVIDER_load(lc, KCAPI_AIO_NAME);
    }
    if (p != NULL && OSSL_PROVIDER_get_params(p, params))
        return lc;
    for (;;) {
        const char *data = NULL;
        size_t used = strlen(errs);

        if ((e = ERR_get_error_all(NULL, NULL, NULL, &data, NULL)) == 0)
            break;
        snprintf(errs + used, ecap - used, "%s: %s; ",
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?", data ? data : "");
    }
    OSSL_LIB_CTX_free(lc);
    return NULL;
}

START_TEST(env_values)
{
    char report[8192], errs[2048];
    OSSL_LIB_CTX *lc;

    unsetenv(KCAPI_AIO_ENV_CPU_DRIVERS);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "CPU-driver modes: software") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);

    setenv(KCAPI_AIO_ENV_CPU_DRIVERS, "kernel", 1);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "CPU-driver modes: kernel") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);

    setenv(KCAPI_AIO_ENV_CPU_DRIVERS, "sideways", 1);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc == NULL, "KCAPI_AIO_CPU_DRIVERS=sideways loaded: %s", report);
    ck_assert_msg(strstr(errs, KCAPI_AIO_ENV_CPU_DRIVERS " \"sideways\": expected software or kernel") != NULL,
                  "errors: %s", errs);
    unsetenv(KCAPI_AIO_ENV_CPU_DRIVERS);
}
END_TEST

START_TEST(config_values)
{
    char report[8192], errs[2048];
    OSSL_LIB_CTX *lc;

    unsetenv(KCAPI_AIO_ENV_CPU_DRIVERS);
    lc = load("kernel", report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "CPU-driver modes: kernel") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);

    /* The environment overrides the config. */
    setenv(KCAPI_AIO_ENV_CPU_DRIVERS, "software", 1);
    lc = load("kernel", report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "CPU-driver modes: software") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);
    unsetenv(KCAPI_AIO_ENV_CPU_DRIVERS);

    lc = load("maybe", report, sizeof(report), errs, sizeof(errs));
    /* (OpenSSL's config loader does not keep a provider's init errors on the queue.) */
    ck_assert_msg(lc == NULL, "cpu_drivers = maybe loaded: %s", report);
}
END_TEST

START_TEST(async_batch_env)
{
    char report[8192], errs[2048];
    OSSL_LIB_CTX *lc;

    unsetenv(KCAPI_AIO_ENV_ASYNC_BATCH);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "ASYNC jobs' records batched: no") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);

    setenv(KCAPI_AIO_ENV_ASYNC_BATCH, "1", 1);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "ASYNC jobs' records batched: yes") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);

    setenv(KCAPI_AIO_ENV_ASYNC_BATCH, "0", 1);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc != NULL, "%s", errs);
    ck_assert_msg(strstr(report, "ASYNC jobs' records batched: no") != NULL, "%s", report);
    OSSL_LIB_CTX_free(lc);

    setenv(KCAPI_AIO_ENV_ASYNC_BATCH, "yes", 1);
    lc = load(NULL, report, sizeof(report), errs, sizeof(errs));
    ck_assert_msg(lc == NULL, "KCAPI_AIO_ASYNC_BATCH=yes loaded: %s", report);
    ck_assert_msg(strstr(errs, KCAPI_AIO_ENV_ASYNC_BATCH " = \"yes\": expected a number from 0 to 1") != NULL,
                  "errors: %s", errs);
    unsetenv(KCAPI_AIO_ENV_ASYNC_BATCH);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("cpu_drivers");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, env_values);
    tcase_add_test(tc, config_values);
    tcase_add_test(tc, async_batch_env);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
