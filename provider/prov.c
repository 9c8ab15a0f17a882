/*
 * The provider entry point: configuration, the algorithm table, provider
 * params (name, version, status, and what kcapi-aio is doing) and errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "cipher.h"
#include "forward.h"
#include "kcapi-aio/names.h"

static OSSL_FUNC_core_get_params_fn *c_get_params;
static OSSL_FUNC_core_new_error_fn *c_new_error;
static OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *c_vset_error;

void ka_raise_at(const KA_PROV *p, int reason, const char *file, int line, const char *func,
                 const char *fmt, ...)
{
    va_list ap;

    if (c_new_error == NULL || c_vset_error == NULL || p == NULL)
        return;
    c_new_error(p->handle);
    if (c_set_error_debug != NULL)
        c_set_error_debug(p->handle, file, line, func);
    va_start(ap, fmt);
    c_vset_error(p->handle, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

int ka_keyidx(size_t keylen)
{
    return keylen == 16 ? 0 : keylen == 24 ? 1 : keylen == 32 ? 2 : -1;
}

int ka_rand(const KA_PROV *p, unsigned char *buf, size_t n)
{
    if (n == 0 || RAND_bytes_ex(p->sw_libctx, buf, n, 0) > 0)
        return 1;
    ka_raise(p, KA_R_OPERATION_FAILED, "no random bytes");
    return 0;
}

static const OSSL_ITEM reason_strings[] = {
    { KA_R_INVALID_KEY_LENGTH, "invalid key length" },
    { KA_R_INVALID_IV_LENGTH, "invalid IV length" },
    { KA_R_INVALID_TAG, "invalid tag" },
    { KA_R_INVALID_TAG_LENGTH, "invalid tag length" },
    { KA_R_NO_KEY_SET, "no key set" },
    { KA_R_NO_IV_SET, "no IV set" },
    { KA_R_OUTPUT_BUFFER_TOO_SMALL, "output buffer too small" },
    { KA_R_NULL_BUFFER, "NULL buffer" },
    { KA_R_OVERLAP, "overlapping buffers" },
    { KA_R_WRONG_FINAL_BLOCK_LENGTH, "wrong final block length" },
    { KA_R_BAD_DECRYPT, "bad decrypt" },
    { KA_R_TAG_MISMATCH, "tag verification failed" },
    { KA_R_OPERATION_FAILED, "cipher operation failed" },
    { KA_R_FINISHED, "operation already finished" },
    { KA_R_FAILED_TO_GET_PARAMETER, "failed to get parameter" },
    { KA_R_FAILED_TO_SET_PARAMETER, "failed to set parameter" },
    { KA_R_INVALID_AAD, "invalid AAD" },
    { KA_R_AAD_AFTER_DATA, "AAD after data" },
    { KA_R_BACKEND, "backend failure" },
    { KA_R_INVALID_CONFIG, "invalid kcapi-aio configuration" },
    { KA_R_TOO_MANY_RECORDS, "too many records" },
    { KA_R_DATA_TOO_LONG, "data too long" },
    { KA_R_TLS_RECORD, "bad TLS record" },
    { KA_R_MALLOC, "out of memory" },
    { KA_R_PIPELINE, "bad pipeline arguments" },
    { KA_R_NOT_INITIALISED, "not initialised" },
    { KA_R_NUMPIPES, "number of pipes differs from the pipeline init" },
    { KA_R_PIPELINE_MIXED, "pipeline and ordinary cipher calls mixed" },
    { 0, NULL }
};

#define PROPS KCAPI_AIO_PROPS
static const OSSL_ALGORITHM ciphers[] = {
    { "AES-256-GCM:id-aes256-GCM:2.16.840.1.101.3.4.1.46", PROPS, ka_aes256gcm_functions,
      "AES-256-GCM through the kernel crypto API" },
    { "AES-192-GCM:id-aes192-GCM:2.16.840.1.101.3.4.1.26", PROPS, ka_aes192gcm_functions,
      "AES-192-GCM through the kernel crypto API" },
    { "AES-128-GCM:id-aes128-GCM:2.16.840.1.101.3.4.1.6", PROPS, ka_aes128gcm_functions,
      "AES-128-GCM through the kernel crypto API" },
    { "AES-256-CBC:AES256:2.16.840.1.101.3.4.1.42", PROPS, ka_aes256cbc_functions,
      "AES-256-CBC through the kernel crypto API" },
    { "AES-192-CBC:AES192:2.16.840.1.101.3.4.1.22", PROPS, ka_aes192cbc_functions,
      "AES-192-CBC through the kernel crypto API" },
    { "AES-128-CBC:AES128:2.16.840.1.101.3.4.1.2", PROPS, ka_aes128cbc_functions,
      "AES-128-CBC through the kernel crypto API" },
    { "AES-256-CTR", PROPS, ka_aes256ctr_functions, "AES-256-CTR through the kernel crypto API" },
    { "AES-192-CTR", PROPS, ka_aes192ctr_functions, "AES-192-CTR through the kernel crypto API" },
    { "AES-128-CTR", PROPS, ka_aes128ctr_functions, "AES-128-CTR through the kernel crypto API" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
    *no_cache = 0;
    return operation_id == OSSL_OP_CIPHER ? ka_fwd_algorithms(provctx, ciphers) : NULL;
}

static const OSSL_PARAM prov_gettable[] = {
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
    OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
    OSSL_PARAM_utf8_ptr(KCAPI_AIO_PARAM_BACKEND, NULL, 0),
    OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_REPORT, NULL, 0),
    OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_COUNTERS, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    (void)provctx;
    return prov_gettable;
}

static const char *const backend_names[] = { "auto", "aio", "sync", "software" };

static int set_report(const KA_PROV *p, OSSL_PARAM *param, int counters_only)
{
    size_t need = ka_report(p, NULL, 0, counters_only) + 1;
    char *buf = OPENSSL_malloc(need);
    int ok;

    if (buf == NULL)
        return 0;
    ka_report(p, buf, need, counters_only);
    ok = OSSL_PARAM_set_utf8_string(param, buf);
    OPENSSL_free(buf);
    return ok;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    KA_PROV *p = provctx;
    OSSL_PARAM *q;

    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(q, "kcapi-aio: AES-CBC/CTR/GCM through the Linux kernel crypto API"))
        return 0;
    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(q, KCAPI_AIO_VERSION))
        return 0;
    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(q, "kcapi-aio " KCAPI_AIO_VERSION ", built with " OPENSSL_VERSION_TEXT))
        return 0;
    if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL
        && !OSSL_PARAM_set_int(q, 1))
        return 0;
    if ((q = OSSL_PARAM_locate(params, KCAPI_AIO_PARAM_BACKEND)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(q, backend_names[p->backend]))
        return 0;
    if ((q = OSSL_PARAM_locate(params, KCAPI_AIO_PARAM_REPORT)) != NULL && !set_report(p, q, 0))
        return 0;
    if ((q = OSSL_PARAM_locate(params, KCAPI_AIO_PARAM_COUNTERS)) != NULL && !set_report(p, q, 1))
        return 0;
    return 1;
}

static const OSSL_ITEM *prov_reason_strings(void *provctx)
{
    (void)provctx;
    return reason_strings;
}

static void prov_teardown(void *provctx)
{
    KA_PROV *p = provctx;
    int m, k;

    if (p == NULL)
        return;
    for (m = 0; m < KAIO_NMODES; m++)
        for (k = 0; k < 3; k++)
            EVP_CIPHER_free(p->sw_cipher[m][k]);
    ka_fwd_free(p);
    OSSL_PROVIDER_unload(p->sw_default);
    OSSL_LIB_CTX_free(p->sw_libctx);
    OPENSSL_free(p);
}

static const OSSL_DISPATCH prov_functions[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_reason_strings },
    { 0, NULL }
};

/* Reads an unsigned config value; a bad one is a load error, not a silent default. */
static int parse_uint(KA_PROV *p, const char *key, const char *val, unsigned long max,
                      unsigned long *out)
{
    char *end;
    unsigned long v;

    if (val == NULL)
        return 1;
    errno = 0;
    v = strtoul(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || v > max || val[0] == '-') {
        ka_raise(p, KA_R_INVALID_CONFIG, "%s = \"%s\": expected a number from 0 to %lu", key, val, max);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_backend(KA_PROV *p, const char *from, const char *val)
{
    size_t i;

    if (val == NULL)
        return 1;
    for (i = 0; i < sizeof(backend_names) / sizeof(backend_names[0]); i++)
        if (strcmp(val, backend_names[i]) == 0) {
            p->backend = (enum ka_backend)i;
            return 1;
        }
    ka_raise(p, KA_R_INVALID_CONFIG, "%s \"%s\": expected auto, aio, sync or software", from, val);
    return 0;
}

static int parse_cpu_drivers(KA_PROV *p, const char *from, const char *val)
{
    if (val == NULL)
        return 1;
    if (strcmp(val, "software") == 0 || strcmp(val, "kernel") == 0) {
        p->cpu_drivers_kernel = strcmp(val, "kernel") == 0;
        return 1;
    }
    ka_raise(p, KA_R_INVALID_CONFIG, "%s \"%s\": expected software or kernel", from, val);
    return 0;
}

static int read_config(KA_PROV *p)
{
    const char *backend = NULL, *min_batch = NULL, *fd_budget = NULL, *min_bytes = NULL,
               *coalesce = NULL, *cpu_drivers = NULL, *async_batch = NULL;
    unsigned long v;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_BACKEND, (char **)&backend, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_AIO_MIN_BATCH, (char **)&min_batch, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_FD_BUDGET, (char **)&fd_budget, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_MIN_KERNEL_BYTES, (char **)&min_bytes, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_COALESCE, (char **)&coalesce, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_CPU_DRIVERS, (char **)&cpu_drivers, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_CFG_ASYNC_BATCH, (char **)&async_batch, 0),
        OSSL_PARAM_END
    };
    const char *env;

    p->backend = KA_BACKEND_AUTO;
    p->aio_min_batch = 2;
    p->fd_budget = 256;
    if (c_get_params != NULL && !c_get_params(p->handle, params))
        return 0;
    if (!parse_backend(p, "config backend =", backend))
        return 0;
    if ((env = getenv(KCAPI_AIO_ENV_BACKEND)) != NULL && *env != '\0'
        && !parse_backend(p, KCAPI_AIO_ENV_BACKEND, env))
        return 0;
    if (!parse_cpu_drivers(p, "config " KCAPI_AIO_CFG_CPU_DRIVERS " =", cpu_drivers))
        return 0;
    if ((env = getenv(KCAPI_AIO_ENV_CPU_DRIVERS)) != NULL && *env != '\0'
        && !parse_cpu_drivers(p, KCAPI_AIO_ENV_CPU_DRIVERS, env))
        return 0;
    v = p->aio_min_batch;
    if (!parse_uint(p, KCAPI_AIO_CFG_AIO_MIN_BATCH, min_batch, KAIO_MAX_BATCH + 1, &v))
        return 0;
    p->aio_min_batch = v == 0 ? 1 : (unsigned int)v;
    v = p->fd_budget;
    if (!parse_uint(p, KCAPI_AIO_CFG_FD_BUDGET, fd_budget, 1u << 20, &v))
        return 0;
    p->fd_budget = (unsigned int)v;
    v = 0;
    if (!parse_uint(p, KCAPI_AIO_CFG_MIN_KERNEL_BYTES, min_bytes, 1ul << 30, &v))
        return 0;
    p->kernel_min_bytes = v;
    v = 1;
    if (!parse_uint(p, KCAPI_AIO_CFG_COALESCE, coalesce, 1, &v))
        return 0;
    /* Exact (one XOR per record fixes the first block) and far fewer kernel operations. */
    kaio_set_coalesce((int)v);
    v = 0;
    if (!parse_uint(p, KCAPI_AIO_CFG_ASYNC_BATCH, async_batch, 1, &v))
        return 0;
    if ((env = getenv(KCAPI_AIO_ENV_ASYNC_BATCH)) != NULL && *env != '\0'
        && !parse_uint(p, KCAPI_AIO_ENV_ASYNC_BATCH, env, 1, &v))
        return 0;
    p->async_batch = (int)v;
    kaio_set_async_batch(p->async_batch);
    kaio_set_fd_budget(p->fd_budget);
    return 1;
}

static void print_stats(void)
{
    size_t need = ka_report(NULL, NULL, 0, 1) + 1;
    char *buf = malloc(need);

    if (buf == NULL)
        return;
    ka_report(NULL, buf, need, 1);
    fprintf(stderr, "kcapi-aio counters (pid %ld):\n%s", (long)getpid(), buf);
    free(buf);
}

static const char *const sw_names[KAIO_NMODES][3] = {
    { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" },
    { "AES-128-CTR", "AES-192-CTR", "AES-256-CTR" },
    { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" },
};

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    static int stats_registered;
    KA_PROV *p;
    int m, k;

    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            c_get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    if ((p = OPENSSL_zalloc(sizeof(*p))) == NULL)
        return 0;
    p->handle = handle;
    if (!read_config(p))
        goto fail;
    /* Software work runs on libcrypto's default provider, kept private to us. */
    if ((p->sw_libctx = OSSL_LIB_CTX_new()) == NULL
        || (p->sw_default = OSSL_PROVIDER_load(p->sw_libctx, "default")) == NULL) {
        ka_raise(p, KA_R_BACKEND, "cannot load the default provider for the software backend");
        goto fail;
    }
    for (m = 0; m < KAIO_NMODES; m++)
        for (k = 0; k < 3; k++)
            if ((p->sw_cipher[m][k] = EVP_CIPHER_fetch(p->sw_libctx, sw_names[m][k], NULL)) == NULL) {
                ka_raise(p, KA_R_BACKEND, "software %s unavailable", sw_names[m][k]);
                goto fail;
            }
    if (!ka_fwd_new(p)) {
        ka_raise(p, KA_R_MALLOC, NULL);
        goto fail;
    }
    if (!stats_registered && getenv(KCAPI_AIO_ENV_STATS) != NULL && *getenv(KCAPI_AIO_ENV_STATS) != '0') {
        /* glibc runs a module's atexit handlers at dlclose too, so this stays safe. */
        stats_registered = 1;
        atexit(print_stats);
    }
    *out = prov_functions;
    *provctx = p;
    return 1;
fail:
    prov_teardown(p);
    return 0;
}
