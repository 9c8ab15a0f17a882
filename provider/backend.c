/* Backend choice per key and per op; see backend.h. */
#include <string.h>
#include <openssl/crypto.h>

#include "async.h"
#include "backend.h"

struct ka_key {
    KA_PROV *prov;
    enum kaio_mode mode;
    unsigned char key[32];
    size_t keylen;
    int kernel_tried;            /* the kernel handle is made at the first run */
    struct kaio_key *kernel;     /* NULL: this key runs in software */
    enum kaio_reason why_sw;     /* why it does */
    SW_KEY *sw;                  /* made when something must run in software */
};

enum kaio_path ka_backend_choice(const KA_PROV *p, enum kaio_mode mode, enum kaio_reason *why)
{
    const struct kaio_caps *caps;

    *why = KAIO_R_NONE;
    if (p->backend == KA_BACKEND_SOFTWARE) {
        *why = KAIO_R_FORCED;
        return KAIO_PATH_SOFTWARE;
    }
    caps = kaio_probe();
    if (!caps->af_alg) {
        *why = KAIO_R_NO_AF_ALG;
        return KAIO_PATH_SOFTWARE;
    }
    if (!caps->mode[mode].available) {
        *why = caps->mode[mode].reason != KAIO_R_NONE ? caps->mode[mode].reason : KAIO_R_ALG_MISSING;
        return KAIO_PATH_SOFTWARE;
    }
    /*
     * auto: the kernel only where it offloads. A driver that runs on this CPU
     * (AES-NI, the generic C AES, ARMv8 CE, ...) does what the in-process AES
     * does, plus a round trip. aio/sync (and cpu_drivers = kernel) still send
     * such modes to the kernel.
     */
    if (p->backend == KA_BACKEND_AUTO && !p->cpu_drivers_kernel
        && caps->mode[mode].drv_class == KAIO_DRV_CPU) {
        *why = caps->mode[mode].listed_class == KAIO_DRV_DEVICE ? KAIO_R_SYNC_ONLY : KAIO_R_CPU_DRIVER;
        return KAIO_PATH_SOFTWARE;
    }
    if (p->backend == KA_BACKEND_SYNC)
        return KAIO_PATH_SYNC;
    if (!caps->aio) {
        *why = KAIO_R_AIO_UNAVAILABLE;
        return KAIO_PATH_SYNC;
    }
    return KAIO_PATH_AIO;
}

KA_KEY *ka_key_new(KA_PROV *p, enum kaio_mode mode, const unsigned char *key, size_t keylen)
{
    KA_KEY *k;

    if (ka_keyidx(keylen) < 0) {
        ka_raise(p, KA_R_INVALID_KEY_LENGTH, "%zu-byte key", keylen);
        return NULL;
    }
    if ((k = OPENSSL_zalloc(sizeof(*k))) == NULL) {
        ka_raise(p, KA_R_MALLOC, NULL);
        return NULL;
    }
    k->prov = p;
    k->mode = mode;
    memcpy(k->key, key, keylen);
    k->keylen = keylen;
    return k;
}

KA_KEY *ka_key_dup(const KA_KEY *k)
{
    /* A copy gets its own kernel sockets: two contexts may run in two threads. */
    return ka_key_new(k->prov, k->mode, k->key, k->keylen);
}

void ka_key_free(KA_KEY *k)
{
    if (k == NULL)
        return;
    kaio_key_free(k->kernel);
    sw_key_free(k->sw);
    OPENSSL_clear_free(k, sizeof(*k));
}

int ka_key_in_kernel(KA_KEY *k, enum kaio_reason *why)
{
    if (!k->kernel_tried) {
        int err = 0;

        k->kernel_tried = 1;
        if (ka_backend_choice(k->prov, k->mode, &k->why_sw) != KAIO_PATH_SOFTWARE) {
            k->kernel = kaio_key_new(k->mode, k->key, k->keylen, &k->why_sw, &err);
            if (k->kernel != NULL)
                k->why_sw = KAIO_R_NONE;
            else if (k->why_sw == KAIO_R_NONE)
                k->why_sw = KAIO_R_KERNEL_ERROR;
        }
    }
    if (why != NULL)
        *why = k->why_sw;
    return k->kernel != NULL;
}

SW_GCM *ka_key_gcm_stream(KA_KEY *k, int enc, const unsigned char *iv, size_t ivlen)
{
    return sw_gcm_new(k->prov, k->key, k->keylen, enc, iv, ivlen);
}

static int run_software(KA_KEY *k, struct kaio_op *ops, size_t n)
{
    if (k->sw == NULL && (k->sw = sw_key_new(k->prov, k->mode, k->key, k->keylen)) == NULL)
        return 0;
    return sw_run(k->sw, ops, n);
}

/* Copies the ops whose status is (or is not) KAIO_NOT_RUN into sub; idx maps them back. */
static size_t gather(struct kaio_op *ops, size_t n, int not_run, struct kaio_op *sub, size_t *idx)
{
    size_t i, m = 0;

    for (i = 0; i < n; i++)
        if ((ops[i].status == KAIO_NOT_RUN) == not_run) {
            sub[m] = ops[i];
            idx[m++] = i;
        }
    return m;
}

static void scatter(struct kaio_op *ops, const struct kaio_op *sub, const size_t *idx, size_t m)
{
    size_t i;

    for (i = 0; i < m; i++) {
        ops[idx[i]].status = sub[i].status;
        ops[idx[i]].err = sub[i].err;
        ops[idx[i]].reason = sub[i].reason;
    }
}

int ka_run(KA_KEY *k, struct kaio_op *ops, size_t n)
{
    struct kaio_op sub[KAIO_MAX_BATCH];
    size_t idx[KAIO_MAX_BATCH], i, m, small = 0;
    enum kaio_path path;
    enum kaio_reason why;
    const struct kaio_wait *wait;

    if (n == 0)
        return 1;
    if (n > KAIO_MAX_BATCH) {
        ka_raise(k->prov, KA_R_BACKEND, "%zu operations in one batch (at most %d)", n, KAIO_MAX_BATCH);
        return 0;
    }
    if (!ka_key_in_kernel(k, &why)) {
        kaio_count_fallback(why, n);
        return run_software(k, ops, n);
    }
    for (i = 0; i < n; i++) {
        /* Below the threshold a record is cheaper on the CPU: it stays in software. */
        int below = ops[i].len < k->prov->kernel_min_bytes;

        ops[i].status = below ? KAIO_NOT_RUN : 0;
        ops[i].reason = below ? KAIO_R_SMALL_RECORD : KAIO_R_NONE;
        small += below;
    }
    wait = ka_async_wait();
    /* Inside an ASYNC job even one record goes through AIO: the job pauses
     * on its completion instead of blocking the thread. */
    if (k->prov->backend == KA_BACKEND_AIO)
        path = KAIO_PATH_AIO;
    else if (k->prov->backend == KA_BACKEND_SYNC || (wait == NULL && n - small < k->prov->aio_min_batch))
        path = KAIO_PATH_SYNC;
    else
        path = KAIO_PATH_AIO;

    /* The kernel gets every op it may take, in one call. */
    if (small == 0) {
        kaio_key_run_wait(k->kernel, ops, n, path, wait);
    } else if ((m = gather(ops, n, 0, sub, idx)) > 0) {
        kaio_key_run_wait(k->kernel, sub, m, path, wait);
        scatter(ops, sub, idx, m);
    }
    /* What it could not take runs in software, also in one call. */
    if ((m = gather(ops, n, 1, sub, idx)) == 0)
        return 1;
    for (i = 0; i < m; i++)
        kaio_count_fallback(sub[i].reason != KAIO_R_NONE ? sub[i].reason : KAIO_R_KERNEL_ERROR, 1);
    if (!run_software(k, sub, m))
        return 0;
    scatter(ops, sub, idx, m);
    return 1;
}
