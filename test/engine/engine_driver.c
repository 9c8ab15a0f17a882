/*
 * The driver classifier (aio/driver.c) on /proc/crypto texts captured from the
 * lab's Debian kernels (test/engine/proc-crypto/, see its README), and on
 * driver names of other machines' drivers. Plain text logic: runs anywhere.
 */
#include "etest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KAIO_PROC_CRYPTO_DIR
#error KAIO_PROC_CRYPTO_DIR must name test/engine/proc-crypto
#endif

static char *load(const char *name)
{
    char path[512];
    FILE *f;
    char *buf;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", KAIO_PROC_CRYPTO_DIR, name);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    buf = malloc(512 * 1024);
    ck_assert(buf != NULL);
    n = fread(buf, 1, 512 * 1024 - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The top driver of alg in a capture, its class, and whether it was recognised. */
static void expect_top(const char *text, const char *alg, size_t rank, const char *driver,
                       enum kaio_driver_class cls)
{
    struct kaio_crypto_entry list[16];
    size_t n = kaio_crypto_drivers(text, alg, list, 16);
    int known = -1;

    ck_assert_msg(n > rank, "%s: %zu drivers listed, want more than %zu", alg, n, rank);
    ck_assert_msg(strcmp(list[rank].driver, driver) == 0, "%s #%zu: driver %s, want %s", alg, rank,
                  list[rank].driver, driver);
    ck_assert_int_eq(kaio_driver_classify(text, list[rank].driver, 0, 0, &known), cls);
    ck_assert_msg(known == 1, "%s: %s not recognised", alg, driver);
}

struct capture {
    const char *file;
    const char *alg;
    size_t rank;            /* 0: highest priority */
    const char *driver;
    enum kaio_driver_class cls;
};

#include "proc-crypto/expect.h"

START_TEST(captured)
{
    const struct capture *c = &captures[_i];
    char *text = load(c->file);

    expect_top(text, c->alg, c->rank, c->driver, c->cls);
    free(text);
}
END_TEST

/* Names from other machines, with the module /proc/crypto would show. */
START_TEST(names)
{
    static const struct {
        const char *driver, *module;
        enum kaio_driver_class cls;
        int known;
    } t[] = {
        { "cbc-aes-aesni", "aesni_intel", KAIO_DRV_CPU, 1 },
        { "generic-gcm-vaes-avx10_512", "aesni_intel", KAIO_DRV_CPU, 1 },
        { "cbc-aes-ce", "aes_ce_blk", KAIO_DRV_CPU, 1 },
        { "ctr-aes-neonbs", "aes_neon_bs", KAIO_DRV_CPU, 1 },
        { "gcm-aes-ce", "ghash_ce", KAIO_DRV_CPU, 1 },
        { "cbc-aes-s390", "aes_s390", KAIO_DRV_CPU, 1 },
        { "p8_aes_cbc", "vmx_crypto", KAIO_DRV_CPU, 1 },
        { "cbc-aes-riscv64-zvkned", "aes_riscv64", KAIO_DRV_CPU, 1 },
        { "aes-generic", "kernel", KAIO_DRV_CPU, 1 },
        { "cbc-aes-caam", "caam_jr", KAIO_DRV_DEVICE, 1 },
        { "qat_aes_cbc", "intel_qat", KAIO_DRV_DEVICE, 1 },
        { "cbc-aes-ccp", "ccp_crypto", KAIO_DRV_DEVICE, 1 },
        { "safexcel-cbc-aes", "crypto_safexcel", KAIO_DRV_DEVICE, 1 },
        { "cbc-aes-sun8i-ce", "sun8i_ce", KAIO_DRV_DEVICE, 1 },
        { "virtio_crypto_aes_cbc", "virtio_crypto", KAIO_DRV_DEVICE, 1 },
        /* Never seen: a device, and said to be unrecognised. */
        { "cbc-aes-frobnicator", "frob", KAIO_DRV_DEVICE, 0 },
        { "cbc-aes-frobnicator", "kernel", KAIO_DRV_DEVICE, 0 },
    };
    char text[512];
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int known = -1;

        snprintf(text, sizeof(text),
                 "name         : cbc(aes)\ndriver       : %s\nmodule       : %s\npriority     : 300\n\n",
                 t[i].driver, t[i].module);
        ck_assert_msg(kaio_driver_classify(text, t[i].driver, 0, 0, &known) == t[i].cls, "%s: class",
                      t[i].driver);
        ck_assert_msg(known == t[i].known, "%s: known %d", t[i].driver, known);
    }
}
END_TEST

/* Template instances are classified by every driver they wrap. */
START_TEST(templates)
{
    static const char text[] = "name         : aes\ndriver       : aes-generic\nmodule       : kernel\n\n"
                               "name         : ecb(aes)\ndriver       : ecb-aes-frob\nmodule       : frob_hw\n\n"
                               "name         : ecb(aes)\ndriver       : ecb-aes-caam\nmodule       : caam_jr\n\n";
    int known = -1;

    ck_assert_int_eq(kaio_driver_classify(text, "cbc(aes-generic)", 0, 0, &known), KAIO_DRV_CPU);
    ck_assert_int_eq(known, 1);
    ck_assert_int_eq(kaio_driver_classify(text, "gcm_base(ctr(aes-generic),ghash-generic)", 0, 0, &known),
                     KAIO_DRV_CPU);
    ck_assert_int_eq(known, 1);
    ck_assert_int_eq(kaio_driver_classify(text, "cbc(ecb(aes-lib))", 0, 0, &known), KAIO_DRV_CPU);
    ck_assert_int_eq(kaio_driver_classify(text, "cryptd(__cbc-aes-aesni)", 0, 0, &known), KAIO_DRV_CPU);
    ck_assert_int_eq(kaio_driver_classify(text, "ctr(ecb-aes-caam)", 0, 0, &known), KAIO_DRV_DEVICE);
    ck_assert_int_eq(known, 1);
    ck_assert_int_eq(kaio_driver_classify(text, "ctr(ecb-aes-frob)", 0, 0, &known), KAIO_DRV_DEVICE);
    ck_assert_int_eq(known, 0);
}
END_TEST

/* The kernel's own word (CRYPTO_ALG_KERN_DRIVER_ONLY) wins; bad input is a device. */
START_TEST(flags_and_bad_input)
{
    int known = -1;

    ck_assert_int_eq(kaio_driver_classify(NULL, "cbc-aes-mystery", 0x1000, 1, &known), KAIO_DRV_DEVICE);
    ck_assert_int_eq(known, 1);
    /* 0x485 is what 6.12 reports for cbc-aes-aesni: no KERN_DRIVER_ONLY. */
    ck_assert_int_eq(kaio_driver_classify(NULL, "cbc-aes-aesni", 0x485, 1, &known), KAIO_DRV_CPU);
    ck_assert_int_eq(kaio_driver_classify(NULL, "", 0, 0, &known), KAIO_DRV_DEVICE);
    ck_assert_int_eq(known, 0);
    ck_assert_int_eq(kaio_driver_classify(NULL, NULL, 0, 0, &known), KAIO_DRV_DEVICE);
    ck_assert_int_eq(kaio_driver_classify("garbage\n\n\n:::\n", "(),(", 0, 0, &known), KAIO_DRV_DEVICE);
    ck_assert_int_eq(known, 0);
    {
        struct kaio_crypto_entry e[2];

        ck_assert_uint_eq(kaio_crypto_drivers("garbage : x\nname:\n\n\n", "cbc(aes)", e, 2), 0);
        ck_assert_uint_eq(kaio_crypto_drivers(NULL, "cbc(aes)", e, 2), 0);
    }
}
END_TEST

/* Priority order, and a list longer than the room given keeps the top ones. */
START_TEST(priority_order)
{
    static const char text[] = "name : cbc(aes)\ndriver : a\npriority : 100\n\n"
                               "name : cbc(aes)\ndriver : b\npriority : 400\n\n"
                               "name : ctr(aes)\ndriver : x\npriority : 999\n\n"
                               "name : cbc(aes)\ndriver : c\npriority : 150\n\n";
    struct kaio_crypto_entry e[2];

    ck_assert_uint_eq(kaio_crypto_drivers(text, "cbc(aes)", e, 2), 2);
    ck_assert_str_eq(e[0].driver, "b");
    ck_assert_str_eq(e[1].driver, "c");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine_driver");
    TCase *t = tcase_create("driver");

    tcase_add_loop_test(t, captured, 0, (int)(sizeof(captures) / sizeof(captures[0])));
    tcase_add_test(t, names);
    tcase_add_test(t, templates);
    tcase_add_test(t, flags_and_bad_input);
    tcase_add_test(t, priority_order);
    suite_add_tcase(s, t);
    return et_main(s, NULL);
}
