#include "testutil.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"

const char *const tu_ciphers[9] = {
    "AES-128-CBC", "AES-192-CBC", "AES-256-CBC",
    "AES-128-CTR", "AES-192-CTR", "AES-256-CTR",
    "AES-128-GCM", "AES-192-GCM", "AES-256-GCM",
};

static OSSL_LIB_CTX *ours, *ref;

static void free_ctxs(void)
{
    OSSL_LIB_CTX_free(ours);
    OSSL_LIB_CTX_free(ref);
}

const char *tu_module_dir(void)
{
    const char *d = getenv("KCAPI_AIO_MODULE_DIR");
    return d != NULL && *d != '\0' ? d : KCAPI_AIO_BUILD_MODULE_DIR;
}

static OSSL_LIB_CTX *new_ctx(const char *prov, const char *dir)
{
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();

    if (lc == NULL)
        return NULL;
    if (dir != NULL)
        OSSL_PROVIDER_set_default_search_path(lc, dir);
    if (OSSL_PROVIDER_load(lc, prov) == NULL) {
        fprintf(stderr, "cannot load provider %s from %s: %s\n", prov,
                dir != NULL ? dir : "(default path)", tu_errors());
        OSSL_LIB_CTX_free(lc);
        return NULL;
    }
    if (ours == NULL && ref == NULL)
        atexit(free_ctxs);
    return lc;
}

OSSL_LIB_CTX *tu_load_ours(void)
{
    if (ours == NULL)
        ours = new_ctx(KCAPI_AIO_NAME, tu_module_dir());
    return ours;
}

OSSL_LIB_CTX *tu_load_ref(void)
{
    if (ref == NULL)
        ref = new_ctx("default", NULL);
    return ref;
}

OSSL_LIB_CTX *tu_ours(void)
{
    ck_assert_msg(tu_load_ours() != NULL, "kcapi-aio provider did not load");
    return ours;
}

OSSL_LIB_CTX *tu_ref(void)
{
    ck_assert_msg(tu_load_ref() != NULL, "default provider did not load");
    return ref;
}

EVP_CIPHER *tu_fetch(OSSL_LIB_CTX *lc, const char *name)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc, name, NULL);

    ck_assert_msg(c != NULL, "fetch %s: %s", name, tu_errors());
    return c;
}

static uint64_t rng_state;
static int rng_ready;

uint64_t tu_seed(void)
{
    if (!rng_ready) {
        const char *s = getenv("TU_SEED");

        rng_state = s != NULL ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
        fprintf(stderr, "TU_SEED=%llu\n", (unsigned long long)rng_state);
        rng_ready = 1;
    }
    return rng_state;
}

uint32_t tu_rand32(void)
{
    /* splitmix64: tiny, good enough for test data, reproducible from the seed */
    uint64_t z;

    tu_seed();
    z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)((z ^ (z >> 31)) >> 16);
}

size_t tu_rand_below(size_t n)
{
    uint64_t r = ((uint64_t)tu_rand32() << 32) | tu_rand32();

    return n == 0 ? 0 : (size_t)(r % n);
}

void tu_rand_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        uint32_t r = tu_rand32();
        size_t k = n < 4 ? n : 4;

        memcpy(p, &r, k);
        p += k;
        n -= k;
    }
}

const char *tu_errors(void)
{
    static char line[1024];
    size_t used = 0;
    unsigned long e;

    line[0] = '\0';
    while ((e = ERR_get_error()) != 0 && used + 2 < sizeof(line)) {
        char one[256];

        ERR_error_string_n(e, one, sizeof(one));
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s", used ? " | " : "", one);
    }
    return line;
}

int tu_same(const char *what, const unsigned char *a, size_t alen,
            const unsigned char *b, size_t blen)
{
    size_t i, n = alen < blen ? alen : blen;

    for (i = 0; i < n && a[i] == b[i]; i++)
        ;
    if (i == n && alen == blen)
        return 1;
    fprintf(stderr, "%s: differ at offset %zu (lengths %zu vs %zu)\n", what, i, alen, blen);
    return 0;
}

int tu_counter_read(const char *name, uint64_t *v)
{
    char text[8192] = "";
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_COUNTERS, text, sizeof(text)),
        OSSL_PARAM_END
    };
    OSSL_LIB_CTX *lc = tu_load_ours();
    OSSL_PROVIDER *p = lc != NULL ? OSSL_PROVIDER_load(lc, KCAPI_AIO_NAME) : NULL;
    size_t n = strlen(name);
    const char *line;
    int ok = p != NULL && OSSL_PROVIDER_get_params(p, params);

    OSSL_PROVIDER_unload(p);
    *v = 0;
    for (line = text; line != NULL && *line != '\0'; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, n) == 0 && line[n] == '=')
            *v = strtoull(line + n + 1, NULL, 10);
    return ok;
}

uint64_t tu_counter(const char *name)
{
    uint64_t v;

    ck_assert_msg(tu_counter_read(name, &v), "counters: %s", tu_errors());
    return v;
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int tu_tcp_listen(int *port)
{
    struct sockaddr_in a = loopback(0);
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

int tu_tcp_connect(int port)
{
    struct sockaddr_in a = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tu_bytes_waiting(int fd)
{
    int n = 0;

    return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}
