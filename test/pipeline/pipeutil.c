#include "pipeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <openssl/err.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"

int pu_is_cbc(int ci) { return ci < 3; }
int pu_is_gcm(int ci) { return ci >= 6; }
size_t pu_keylen(int ci) { return (size_t)16 + 8 * (size_t)(ci % 3); }

int pu_ref(int ci, int enc, int pad, const unsigned char *key, const unsigned char *iv, size_t ivlen,
           const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t inl,
           unsigned char *out, size_t *outl, unsigned char *tag, size_t taglen)
{
    EVP_CIPHER *c = tu_fetch(tu_ref(), tu_ciphers[ci]);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM params[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
    int l1 = 0, l2 = 0, ok;

    if (pu_is_gcm(ci))
        params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
    ok = ctx != NULL && EVP_CipherInit_ex2(ctx, c, NULL, NULL, enc, params)
        && EVP_CipherInit_ex2(ctx, NULL, key, iv, enc, NULL)
        && EVP_CIPHER_CTX_set_padding(ctx, pad);
    if (ok && pu_is_gcm(ci) && aadlen > 0)
        ok = EVP_CipherUpdate(ctx, NULL, &l1, aad, (int)aadlen);
    if (ok && pu_is_gcm(ci) && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)taglen, tag) > 0;
    l1 = 0;
    ok = ok && EVP_CipherUpdate(ctx, out, &l1, in, (int)inl) && EVP_CipherFinal_ex(ctx, out + l1, &l2);
    if (ok && pu_is_gcm(ci) && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)taglen, tag) > 0;
    *outl = (size_t)l1 + (size_t)l2;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return ok;
}

unsigned char *pu_alloc(size_t len)
{
    unsigned char *p = malloc(len + 2 * PU_CANARY);

    ck_assert_ptr_nonnull(p);
    memset(p, 0xA5, PU_CANARY);
    memset(p + PU_CANARY + len, 0x5A, PU_CANARY);
    return p + PU_CANARY;
}

int pu_canaries_ok(const unsigned char *p, size_t len)
{
    size_t i;

    for (i = 0; i < PU_CANARY; i++)
        if (p[-1 - (long)i] != 0xA5 || p[len + i] != 0x5A)
            return 0;
    return 1;
}

void pu_free(unsigned char *p, size_t len)
{
    if (p == NULL)
        return;
    ck_assert_msg(pu_canaries_ok(p, len), "a write outside a %zu-byte buffer", len);
    free(p - PU_CANARY);
}

static uint64_t field(const char *r, const char *name)
{
    size_t n = strlen(name);
    const char *p = r;

    while ((p = strstr(p, name)) != NULL) {
        if ((p == r || p[-1] == '\n') && p[n] == '=')
            return strtoull(p + n + 1, NULL, 10);
        p += n;
    }
    ck_abort_msg("counter %s missing from the report", name);
    return 0;
}

void pu_counters(struct pu_counters *c)
{
    OSSL_PROVIDER *prov = OSSL_PROVIDER_try_load(tu_ours(), KCAPI_AIO_NAME, 1);
    char buf[4096];
    OSSL_PARAM params[2] = { OSSL_PARAM_END, OSSL_PARAM_END };

    ck_assert_ptr_nonnull(prov);
    params[0] = OSSL_PARAM_construct_utf8_string(KCAPI_AIO_PARAM_COUNTERS, buf, sizeof(buf));
    ck_assert_msg(OSSL_PROVIDER_get_params(prov, params), "counters: %s", tu_errors());
    OSSL_PROVIDER_unload(prov);
    c->batches_aio = field(buf, "batches_aio");
    c->batches_sync = field(buf, "batches_sync");
    c->batches_sw = field(buf, "batches_software");
    c->batches = c->batches_aio + c->batches_sync + c->batches_sw;
    c->ops_sw = field(buf, "ops_software");
    /* Records that shared one coalesced kernel operation count there. */
    c->ops = field(buf, "ops_aio") + field(buf, "ops_sync") + field(buf, "ops_coalesced") + c->ops_sw;
    c->io_submit = field(buf, "io_submit_calls");
    c->kernel_ops = field(buf, "kernel_ops");
    c->max_inflight = field(buf, "max_inflight");
}

const char *pu_errors(void)
{
    static char line[2048];
    size_t used = 0;
    unsigned long e;
    const char *data;
    int flags;

    line[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0 && used + 2 < sizeof(line)) {
        const char *reason = ERR_reason_error_string(e);

        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s%s%s", used ? " | " : "",
                                 reason != NULL ? reason : "?", (flags & ERR_TXT_STRING) ? ": " : "",
                                 (flags & ERR_TXT_STRING) ? data : "");
        if (used >= sizeof(line))
            used = sizeof(line) - 1;
    }
    return line;
}
