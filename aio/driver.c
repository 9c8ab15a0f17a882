/*
 * What a kernel driver runs on: reads /proc/crypto's text and classifies a
 * driver as CPU (the CPU's own AES instructions or plain C) or device. Plain
 * text logic, no syscalls: the probe (probe.c) feeds it what it read.
 *
 * A driver name is classified by its parts: a template instance such as
 * "cbc(aes-generic)" or "gcm_base(ctr(aes-generic),ghash-generic)" is CPU when
 * every driver it wraps is. A name never seen counts as a device: offload is
 * why kcapi-aio is installed, and the report says the name was not recognised.
 */
#include "internal.h"
#include "kaio_test.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRYPTO_ALG_KERN_DRIVER_ONLY 0x00001000u

/* Copies the value of "key : value" in line [p, eol) into val. */
static int field(const char *p, const char *eol, const char *key, char *val, size_t cap)
{
    size_t klen = strlen(key), n;
    const char *v;

    if ((size_t)(eol - p) <= klen || strncmp(p, key, klen) != 0 || (p[klen] != ' ' && p[klen] != ':'))
        return 0;
    v = memchr(p, ':', (size_t)(eol - p));
    if (v == NULL)
        return 0;
    for (v++; v < eol && *v == ' '; v++)
        ;
    n = (size_t)(eol - v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\r'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(val, v, n);
    val[n] = '\0';
    return 1;
}

/* The entry that starts at *p (entries end at a blank line); advances *p. */
static int next_entry(const char **p, struct kaio_crypto_entry *e)
{
    const char *s = *p;
    char prio[32];

    memset(e, 0, sizeof(*e));
    e->priority = LONG_MIN;
    while (*s == '\n')
        s++;
    if (*s == '\0')
        return 0;
    while (*s != '\0' && *s != '\n') {
        const char *eol = strchr(s, '\n');

        if (eol == NULL)
            eol = s + strlen(s);
        if (!field(s, eol, "name", e->name, sizeof(e->name))
            && !field(s, eol, "driver", e->driver, sizeof(e->driver))
            && !field(s, eol, "module", e->module, sizeof(e->module))
            && field(s, eol, "priority", prio, sizeof(prio)))
            e->priority = strtol(prio, NULL, 10);
        s = *eol ? eol + 1 : eol;
    }
    *p = s;
    return 1;
}

size_t kaio_crypto_drivers(const char *text, const char *alg, struct kaio_crypto_entry *out, size_t max)
{
    struct kaio_crypto_entry e;
    const char *p = text;
    size_t n = 0, i;

    while (text != NULL && next_entry(&p, &e)) {
        if (strcmp(e.name, alg) != 0 || e.driver[0] == '\0')
            continue;
        for (i = 0; i < n; i++)
            if (strcmp(out[i].driver, e.driver) == 0)
                break;
        if (i < n)
            continue; /* listed twice (one per type): once is enough */
        /* Insertion by priority, highest first; equal priorities keep text order. */
        for (i = n < max ? n : max; i > 0 && out[i - 1].priority < e.priority; i--)
            if (i < max)
                out[i] = out[i - 1];
        if (i < max) {
            out[i] = e;
            if (n < max)
                n++;
        }
    }
    return n;
}

int kaio_crypto_find_driver(const char *text, const char *driver, struct kaio_crypto_entry *out)
{
    const char *p = text;

    while (text != NULL && next_entry(&p, out))
        if (strcmp(out->driver, driver) == 0)
            return 1;
    memset(out, 0, sizeof(*out));
    return 0;
}

static int contains_any(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strstr(s, *list) != NULL)
            return 1;
    return 0;
}

static int equals_any(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* Driver-name parts of the kernel's on-CPU AES and GHASH implementations. */
static const char *const cpu_names[] = {
    "aesni", "vaes", "aes-generic", "aes-lib", "aes-fixed-time", "ghash-generic", "ghash-clmulni",
    "aes-arm", "aes-ce", "aes-neon", "neonbs", "ghash-ce", "ghash-neon", /* x86, ARM */
    "s390", "p8_", "-p10", "ppc-spe", "riscv64", "sparc64", "padlock",   /* s390 CPACF, POWER, ... */
    NULL
};
/* Their modules (a built-in driver says "kernel", which tells nothing). */
static const char *const cpu_modules[] = {
    "aesni_intel", "aes_generic", "ghash_generic", "ghash_clmulni_intel", "aes_ce_blk",
    "aes_ce_cipher", "aes_neon_blk", "aes_neon_bs", "aes_arm64", "aes_arm", "aes_arm_bs",
    "ghash_ce", "ghash_neon", "aes_s390", "ghash_s390", "vmx_crypto", "aes_riscv64",
    "ghash_riscv64", "aes_sparc64", "padlock_aes", "libaes", NULL
};
/* Devices known by name (anything else not CPU is a device too, unrecognised). */
static const char *const device_names[] = {
    "virtio", "caam", "qat", "ccp", "safexcel", "sun4i", "sun8i", "talitos", "hisi", "atmel",
    "omap", "stm32", "dcp", "ccree", "chcr", "cesa", "rockchip", "rk3288", "s5p", "meson",
    "amlogic", "keembay", "zynqmp", "crypto4xx", "n2_", "mtk", "artpec", "ixp4xx", "qce",
    "sa2ul", "starfive", "tegra", "nx_", "ocs", "sec2", NULL
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One driver that is not a template instance, with its module (may be ""). */
static enum kaio_driver_class leaf_class(const char *name, const char *module, int *known)
{
    *known = 1;
    /* "-generic" and "-lib" (7.x: aes-lib, ghash-lib) are the kernel's C code. */
    if (equals_any(module, cpu_modules) || contains_any(name, cpu_names) || ends_with(name, "-generic")
        || ends_with(name, "-lib"))
        return KAIO_DRV_CPU;
    if (contains_any(name, device_names) || contains_any(module, device_names))
        return KAIO_DRV_DEVICE;
    *known = 0;
    return KAIO_DRV_DEVICE;
}

enum kaio_driver_class kaio_driver_classify(const char *text, const char *driver, uint32_t flags,
                                            int flags_known, int *known)
{
    struct kaio_crypto_entry e;
    enum kaio_driver_class cls = KAIO_DRV_CPU;
    const char *p = driver;
    int all_known = 1, any = 0;

    if (flags_known && (flags & CRYPTO_ALG_KERN_DRIVER_ONLY)) {
        *known = 1; /* the kernel itself says: hardware behind a driver */
        return KAIO_DRV_DEVICE;
    }
    if (driver == NULL || driver[0] == '\0') {
        *known = 0;
        return KAIO_DRV_DEVICE;
    }
    if (strchr(driver, '(') == NULL) {
        kaio_crypto_find_driver(text, driver, &e);
        return leaf_class(driver, e.module, known);
    }
    /* A template instance: every name followed by '(' is a template; the others
     * are the drivers it wraps, classified by their own /proc/crypto entries. */
    while (*p != '\0') {
        char part[KAIO_DRIVER_NAME];
        size_t n = strcspn(p, "(),");
        int k;

        if (n > 0 && p[n] != '(' && n < sizeof(part)) {
            memcpy(part, p, n);
            part[n] = '\0';
            kaio_crypto_find_driver(text, part, &e);
            any = 1;
            if (leaf_class(part, e.module, &k) == KAIO_DRV_DEVICE)
                cls = KAIO_DRV_DEVICE;
            all_known &= k;
        }
        p += n;
        if (*p != '\0')
            p++;
    }
    *known = any && all_known;
    return any ? cls : KAIO_DRV_DEVICE;
}
