/*
 * Which path did the work, seen through kcapi-aio's own counters: with AF_ALG,
 * CBC, CTR and 12-byte-IV GCM records run in the kernel with zero software
 * fallbacks, on the path the backend setting asks for; what the kernel can't
 * do (other GCM IV lengths, streaming GCM, a missing module, missing AIO) runs
 * in software or sync with its reason counted. Output bytes always equal the
 * default provider's.
 *
 * Environment: KCAPI_AIO_BACKEND (aio, sync, auto), KCAPI_AIO_CPU_DRIVERS
 * (kernel: auto sends CPU-driver modes to the kernel), KLAB_SCENARIO (default,
 * no-gcm, no-aio: what the kernel lab took away; device: a virtio-crypto
 * device serves cbc(aes)), KLAB_KERNEL (6.1, 6.12, 7.2).
 *
 * backend=auto runs a mode in the kernel only on a device driver. The lab's
 * drivers are known per scenario: AES-NI or the generic C AES everywhere
 * (CPU), except cbc(aes) in the device scenario, which the device serves on
 * 6.1 and 6.12; 7.2 lists the device but lets AF_ALG bind only a synchronous
 * software implementation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kcapi-aio/engine.h"
#include <openssl/provider.h>
#include "testutil.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif

static const char *scenario(void)
{
    const char *s = getenv("KLAB_SCENARIO");
    return s != NULL ? s : "default";
}

static const char *backend(void)
{
    const char *s = getenv("KCAPI_AIO_BACKEND");
    return s != NULL && *s ? s : "auto";
}

static int kernel_72(void)
{
    const char *k = getenv("KLAB_KERNEL");
    return k != NULL && strcmp(k, "7.2") == 0;
}

/* Whether this run must put cipher's mode in the kernel; else *why it may not. */
static int kernel_expected(const char *cipher, enum kaio_reason *why)
{
    const char *c = getenv("KCAPI_AIO_CPU_DRIVERS");
    int device = strcmp(scenario(), "device") == 0;

    *why = KAIO_R_NONE;
    if (strcmp(backend(), "auto") != 0 || (c != NULL && strcmp(c, "kernel") == 0))
        return 1;
    if (device && strstr(cipher, "CBC") != NULL) {
        if (!kernel_72())
            return 1;
        *why = KAIO_R_SYNC_ONLY;
        return 0;
    }
    *why = KAIO_R_CPU_DRIVER;
    return 0;
}

struct snap {
    uint64_t aio, sync, shared, sw, fb[KAIO_NREASONS];
};

static void snap(struct snap *s)
{
    char name[128];
    int r;

    s->aio = tu_counter("ops_aio");
    s->sync = tu_counter("ops_sync");
    s->shared = tu_counter("ops_coalesced");
    s->sw = tu_counter("ops_software");
    for (r = 1; r < KAIO_NREASONS; r++) {
        snprintf(name, sizeof(name), "fallback[%s]", kaio_reason_name(r));
        s->fb[r] = tu_counter(name);
    }
}

/* One record through ordinary EVP calls, both providers; bytes must agree. */
static void one_record(const char *cipher, size_t len, size_t ivlen, int two_updates)
{
    EVP_CIPHER *ours = tu_fetch(tu_ours(), cipher), *ref = tu_fetch(tu_ref(), cipher);
    int gcm = strstr(cipher, "GCM") != NULL, pass;
    unsigned char key[32], iv[16], aad[13], *pt = malloc(len + 1), *ct[2], *back = malloc(len + 32);
    unsigned char tag[2][16];
    int ctl[2] = { 0, 0 };

    tu_rand_bytes(key, sizeof(key));
    tu_rand_bytes(iv, sizeof(iv));
    tu_rand_bytes(aad, sizeof(aad));
    tu_rand_bytes(pt, len);
    for (pass = 0; pass < 2; pass++) {
        EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
        int n = 0, m = 0, k = 0;
        size_t half = two_updates ? len / 2 : len;

        ct[pass] = malloc(len + 32);
        ck_assert(EVP_EncryptInit_ex2(x, pass ? ref : ours, NULL, NULL, NULL));
        if (gcm)
            ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL));
        ck_assert(EVP_EncryptInit_ex2(x, NULL, key, iv, NULL));
        if (gcm)
            ck_assert(EVP_EncryptUpdate(x, NULL, &k, aad, sizeof(aad)));
        ck_assert_msg(EVP_EncryptUpdate(x, ct[pass], &n, pt, (int)half), "%s", tu_errors());
        if (two_updates)
            ck_assert(EVP_EncryptUpdate(x, ct[pass] + n, &k, pt + half, (int)(len - half)));
        else
            k = 0;
        ck_assert_msg(EVP_EncryptFinal_ex(x, ct[pass] + n + k, &m), "%s", tu_errors());
        ctl[pass] = n + k + m;
        if (gcm)
            ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag[pass]));
        EVP_CIPHER_CTX_free(x);
    }
    ck_assert_msg(ctl[0] == ctl[1] && tu_same(cipher, ct[0], (size_t)ctl[0], ct[1], (size_t)ctl[1]),
                  "%s len %zu: ciphertext differs from the default provider", cipher, len);
    ck_assert(!gcm || memcmp(tag[0], tag[1], 16) == 0);
    {
        /* Decrypt with ours, tag set before the data (TLS 1.3's order). */
        EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
        int n = 0, m = 0, k = 0;

        ck_assert(EVP_DecryptInit_ex2(x, ours, NULL, NULL, NULL));
        if (gcm) {
            ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL));
            ck_assert(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag[0]));
        }
        ck_assert(EVP_DecryptInit_ex2(x, NULL, key, iv, NULL));
        if (gcm)
            ck_assert(EVP_DecryptUpdate(x, NULL, &k, aad, sizeof(aad)));
        ck_assert_msg(EVP_DecryptUpdate(x, back, &n, ct[0], ctl[0]), "%s", tu_errors());
        ck_assert_msg(EVP_DecryptFinal_ex(x, back + n, &m), "%s: %s", cipher, tu_errors());
        ck_assert_msg((size_t)(n + m) == len && memcmp(back, pt, len) == 0, "%s: round trip", cipher);
        EVP_CIPHER_CTX_free(x);
    }
    free(pt);
    free(ct[0]);
    free(ct[1]);
    free(back);
    EVP_CIPHER_free(ours);
    EVP_CIPHER_free(ref);
}

static const size_t lens[] = { 1, 16, 100, 256, 4096, 16384, 70000 };

static void records(const char *cipher)
{
    size_t i;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        one_record(cipher, lens[i], 12, 0);
}

/* The kernel did the work on the path the backend setting asks for. */
static void expect_kernel(const struct snap *a, const struct snap *b, const char *what)
{
    /* Records that shared a coalesced kernel operation (a CTR update's whole
     * blocks and tail keystream) are kernel work on neither path alone. */
    uint64_t aio = b->aio - a->aio, sync = b->sync - a->sync, shared = b->shared - a->shared;
    int r, no_aio = strcmp(scenario(), "no-aio") == 0;

    ck_assert_msg(b->sw == a->sw, "%s: %llu ops ran in software", what,
                  (unsigned long long)(b->sw - a->sw));
    for (r = 1; r < KAIO_NREASONS; r++)
        if (r != KAIO_R_AIO_UNAVAILABLE)
            ck_assert_msg(b->fb[r] == a->fb[r], "%s: fallback '%s' counted", what, kaio_reason_name(r));
    ck_assert_msg(aio + sync + shared > 0, "%s: no kernel operations counted", what);
    if (strcmp(backend(), "sync") == 0)
        ck_assert_msg(aio == 0, "%s: AIO used with backend=sync", what);
    if (strcmp(backend(), "aio") == 0 && !no_aio)
        ck_assert_msg(sync == 0 && aio > 0, "%s: backend=aio but %llu sync ops", what,
                      (unsigned long long)sync);
    if (strcmp(backend(), "aio") == 0 && no_aio)
        ck_assert_msg(aio == 0 && b->fb[KAIO_R_AIO_UNAVAILABLE] > a->fb[KAIO_R_AIO_UNAVAILABLE],
                      "%s: without AIO, backend=aio must run sync and say so", what);
}

/* In software, for the reason why, and nothing in the kernel. */
static void expect_software(const struct snap *a, const struct snap *b, const char *what,
                            enum kaio_reason why)
{
    ck_assert_msg(b->aio == a->aio && b->sync == a->sync && b->shared == a->shared,
                  "%s: kernel operations counted, but auto must run it in software", what);
    ck_assert_msg(b->sw > a->sw, "%s: no software operations counted", what);
    ck_assert_msg(b->fb[why] > a->fb[why], "%s: reason '%s' not counted", what, kaio_reason_name(why));
}

static void expect_path(const struct snap *a, const struct snap *b, const char *cipher)
{
    enum kaio_reason why;

    if (kernel_expected(cipher, &why))
        expect_kernel(a, b, cipher);
    else
        expect_software(a, b, cipher, why);
}

START_TEST(cbc_ctr_in_kernel)
{
    static const char *const ciphers[] = { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC",
                                           "AES-128-CTR", "AES-192-CTR", "AES-256-CTR" };
    struct snap a, b;

    snap(&a);
    records(ciphers[_i]);
    snap(&b);
    expect_path(&a, &b, ciphers[_i]);
}
END_TEST

START_TEST(gcm_in_kernel_or_reasoned)
{
    static const char *const ciphers[] = { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" };
    struct snap a, b;

    snap(&a);
    records(ciphers[_i]);
    snap(&b);
    if (strcmp(scenario(), "no-gcm") == 0) {
        ck_assert_msg(b.aio == a.aio && b.sync == a.sync && b.shared == a.shared && b.sw > a.sw,
                      "no gcm(aes): GCM must run in software only");
        ck_assert_msg(b.fb[KAIO_R_ALG_MISSING] > a.fb[KAIO_R_ALG_MISSING],
                      "no gcm(aes): the reason must be counted");
    } else {
        expect_path(&a, &b, ciphers[_i]);
    }
}
END_TEST

START_TEST(gcm_other_iv_length)
{
    struct snap a, b;
    enum kaio_reason why;

    snap(&a);
    one_record("AES-128-GCM", 1000, 16, 0);
    one_record("AES-256-GCM", 1000, 8, 0);
    snap(&b);
    ck_assert(b.sw > a.sw);
    if (strcmp(scenario(), "no-gcm") != 0 && kernel_expected("AES-128-GCM", &why))
        ck_assert_msg(b.fb[KAIO_R_IV_LENGTH] > a.fb[KAIO_R_IV_LENGTH], "IV length reason not counted");
}
END_TEST

START_TEST(gcm_streaming_pattern)
{
    struct snap a, b;
    enum kaio_reason why;

    snap(&a);
    one_record("AES-128-GCM", 5000, 12, 1);
    snap(&b);
    if (strcmp(scenario(), "no-gcm") != 0 && kernel_expected("AES-128-GCM", &why))
        ck_assert_msg(b.fb[KAIO_R_PATTERN] > a.fb[KAIO_R_PATTERN], "pattern reason not counted");
}
END_TEST

START_TEST(report_tells)
{
    char report[8192] = "";
    OSSL_PARAM params[] = { OSSL_PARAM_utf8_string("kcapi-aio-report", report, sizeof(report)),
                            OSSL_PARAM_END };
    OSSL_PROVIDER *p = OSSL_PROVIDER_load(tu_ours(), "kcapi-aio");

    ck_assert(p != NULL && OSSL_PROVIDER_get_params(p, params));
    OSSL_PROVIDER_unload(p);
    ck_assert_msg(strstr(report, "AF_ALG: yes") != NULL, "%s", report);
    if (strcmp(scenario(), "no-aio") == 0)
        ck_assert_msg(strstr(report, "AIO: no") != NULL, "%s", report);
    else
        ck_assert_msg(strstr(report, "AIO: yes") != NULL, "%s", report);
    if (strcmp(scenario(), "no-gcm") == 0)
        ck_assert_msg(strstr(report, "gcm(aes): kernel lacks it") != NULL, "%s", report);
    if (strcmp(scenario(), "device") == 0 && !kernel_72())
        ck_assert_msg(strstr(report, "driver virtio_crypto_aes_cbc, module virtio_crypto, device") != NULL,
                      "%s", report);
    else if (strcmp(scenario(), "device") == 0)
        ck_assert_msg(strstr(report, "[device virtio_crypto_aes_cbc listed first, but AF_ALG cannot bind it]")
                          != NULL, "%s", report);
    else
        ck_assert_msg(strstr(report, "cbc(aes): kernel has it (driver ") != NULL
                          && strstr(report, ", CPU") != NULL && strstr(report, ", device") == NULL,
                      "%s", report);
    if (strcmp(backend(), "auto") == 0 && strcmp(scenario(), "device") != 0
        && (getenv("KCAPI_AIO_CPU_DRIVERS") == NULL || strcmp(getenv("KCAPI_AIO_CPU_DRIVERS"), "kernel") != 0))
        ck_assert_msg(strstr(report, "runs on this CPU: in-process AES is faster") != NULL, "%s", report);
    printf("%s", report);
}
END_TEST

/*
 * The device goes away under a running program (KAIO_TEST_REMOVE_MODULE names
 * its module; the lab's device scenario, last test of the boot): keys made
 * after it run in software, with the reason, and give the same bytes; no
 * call fails. A fresh process then finds the CPU driver and says so.
 */
START_TEST(device_removed)
{
    const char *mod = getenv("KAIO_TEST_REMOVE_MODULE");
    char cmd[256], line[512], all[8192] = "";
    struct snap a, b, c;
    FILE *f;
    int rc;

    snap(&a);
    one_record("AES-128-CBC", 4096, 12, 0);
    snap(&b);
    if (!kernel_72())
        ck_assert_msg(b.aio + b.sync > a.aio + a.sync, "the device did not run the first record");
    snprintf(cmd, sizeof(cmd), "rmmod %s", mod);
    rc = system(cmd);
    ck_assert_msg(rc == 0, "%s: status %d", cmd, rc);
    one_record("AES-128-CBC", 4096, 12, 0);
    one_record("AES-256-CBC", 70000, 12, 0);
    snap(&c);
    ck_assert_msg(c.aio == b.aio && c.sync == b.sync, "kernel operations after the device went away");
    ck_assert_msg(c.sw > b.sw, "no software operations after the device went away");
    if (!kernel_72())
        ck_assert_msg(c.fb[KAIO_R_ALG_MISSING] > b.fb[KAIO_R_ALG_MISSING], "reason not counted");
    f = popen("./kcapi-aio-info", "r");
    ck_assert(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strlen(all) + strlen(line) < sizeof(all))
            strcat(all, line);
    ck_assert_int_eq(pclose(f), 0);
    printf("after rmmod %s:\n%s", mod, all);
    ck_assert_msg(strstr(all, "cbc(aes): kernel has it (driver ") != NULL && strstr(all, "virtio_crypto") == NULL
                      && strstr(all, "runs on this CPU: in-process AES is faster") != NULL,
                  "%s", all);
}
END_TEST

int main(void)
{
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    Suite *s;
    TCase *tc;
    SRunner *sr;
    int failed;

    if (fd < 0) {
        printf("SKIP: this kernel has no AF_ALG (%s); the kernel lab runs these tests\n",
               strerror(errno));
        return 77;
    }
    close(fd);
    s = suite_create("kernel paths");
    tc = tcase_create("paths");
    printf("backend=%s scenario=%s\n", backend(), scenario());
    tcase_set_timeout(tc, 1200);
    if (getenv("KAIO_TEST_REMOVE_MODULE") != NULL) {
        tcase_add_test(tc, device_removed);
        goto run;
    }
    tcase_add_loop_test(tc, cbc_ctr_in_kernel, 0, 6);
    tcase_add_loop_test(tc, gcm_in_kernel_or_reasoned, 0, 3);
    tcase_add_test(tc, gcm_other_iv_length);
    tcase_add_test(tc, gcm_streaming_pattern);
    tcase_add_test(tc, report_tells);
run:
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    /* The counters are per process: run the cases in this one. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
