/*
 * kcapi-aio-info: loads the provider and prints what it found in this kernel
 * (AF_ALG? which algorithms and drivers? AIO?), the backend each mode gets
 * and why, and the counters. Optional: run a small self-test workload first
 * so the counters show which path did the work.
 *
 *   kcapi-aio-info [--provider-path DIR] [--exercise]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"
#include "tool_module_dir.h"

/* Encrypts and decrypts a few records with each of the nine ciphers. */
static int exercise(OSSL_LIB_CTX *lc)
{
    static const char *const names[] = { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC",
                                         "AES-128-CTR", "AES-192-CTR", "AES-256-CTR",
                                         "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" };
    unsigned char key[32] = { 1 }, iv[16] = { 2 }, pt[1024], ct[1024 + 16], back[1024 + 16], tag[16];
    size_t i;
    int ok = 1;

    memset(pt, 0x5a, sizeof(pt));
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        EVP_CIPHER *c = EVP_CIPHER_fetch(lc, names[i], NULL);
        EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
        int n1 = 0, n2 = 0, m1 = 0, m2 = 0, gcm = strstr(names[i], "GCM") != NULL;

        ok = c != NULL && x != NULL
            && EVP_EncryptInit_ex2(x, c, key, iv, NULL)
            && EVP_EncryptUpdate(x, ct, &n1, pt, sizeof(pt))
            && EVP_EncryptFinal_ex(x, ct + n1, &n2)
            && (!gcm || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag))
            && EVP_DecryptInit_ex2(x, c, key, iv, NULL)
            && (!gcm || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag))
            && EVP_DecryptUpdate(x, back, &m1, ct, n1 + n2)
            && EVP_DecryptFinal_ex(x, back + m1, &m2)
            && m1 + m2 == (int)sizeof(pt) && memcmp(back, pt, sizeof(pt)) == 0;
        printf("exercise %-12s %s\n", names[i], ok ? "ok" : "FAILED");
        EVP_CIPHER_CTX_free(x);
        EVP_CIPHER_free(c);
        if (!ok)
            break;
    }
    return ok;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int do_exercise = 0, i, rc = 0;
    OSSL_LIB_CTX *lc;
    OSSL_PROVIDER *prov;
    char report[16384] = "", *version = NULL, *backend = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, &version, 0),
        OSSL_PARAM_utf8_ptr(KCAPI_AIO_PARAM_BACKEND, &backend, 0),
        OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_REPORT, report, sizeof(report)),
        OSSL_PARAM_END
    };

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--provider-path") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--exercise") == 0)
            do_exercise = 1;
        else {
            fprintf(stderr, "usage: %s [--provider-path DIR] [--exercise]\n", argv[0]);
            return 2;
        }
    }
    lc = OSSL_LIB_CTX_new();
    if (path == NULL && getenv("OPENSSL_MODULES") == NULL)
        path = tool_module_dir();
    if (path != NULL)
        OSSL_PROVIDER_set_default_search_path(lc, path);
    if ((prov = OSSL_PROVIDER_load(lc, KCAPI_AIO_NAME)) == NULL) {
        fprintf(stderr, "kcapi-aio-info: cannot load the %s provider\n", KCAPI_AIO_NAME);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    if (do_exercise && !exercise(lc))
        rc = 1;
    if (!OSSL_PROVIDER_get_params(prov, params)) {
        fprintf(stderr, "kcapi-aio-info: the provider did not answer\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    printf("%s %s\n%s", KCAPI_AIO_NAME, version != NULL ? version : "?", report);
    OSSL_PROVIDER_unload(prov);
    OSSL_LIB_CTX_free(lc);
    return rc;
}
