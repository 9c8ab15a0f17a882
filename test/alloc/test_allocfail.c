/*
 * Every allocation failing in turn. A small scenario (load kcapi-aio, fetch
 * CBC/CTR/GCM, init, updates, dup, final, tag; a GCM pipeline on OpenSSL 3.5+;
 * free and unload) runs once to count its allocations and to check its bytes
 * against the default provider, then once per k in a child process whose k-th
 * allocation fails:
 *   - OpenSSL's allocations (CRYPTO_set_mem_functions: libcrypto and the
 *     provider's OPENSSL_malloc), every k from 1 to the count;
 *   - the engine's own allocations (KCAPI_AIO_FAULT=malloc=ENOMEM:k), k from 1
 *     to ALLOCFAIL_ENGINE_MAX (default 48; the engine allocates only on the
 *     kernel paths, so on a host without AF_ALG these runs are fault-free).
 * Each child must end in a clean failure or in the same bytes, and must not
 * crash or leak: after OPENSSL_cleanup() every OpenSSL allocation must be freed
 * (counted here), and under ASan LeakSanitizer checks the rest at exit.
 *
 * Environment: KCAPI_AIO_MODULE_DIR, ALLOCFAIL_ENGINE_MAX, ALLOCFAIL_VERBOSE=1,
 * ALLOCFAIL_SCOPE=ops (count and fail only after load and fetch) or provider
 * (only the allocations kcapi-aio's own sources make after load and fetch: the
 * kernel lab, where a child takes half a second, uses it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"

#define OUT_MAX 4096

/* ---- counting allocator that fails the k-th allocation ---- */

/* Counting starts when the scenario says (all of it, or after load and fetch). */
static unsigned long n_alloc, fail_at;
static int counting;
/* Live blocks: all, and those kcapi-aio's own sources asked for (OPENSSL_FILE). */
static long live, live_ours;

#define HDR 16 /* keeps malloc's alignment */

static int from_provider(const char *file)
{
    return file != NULL && strstr(file, "/provider/") != NULL;
}

static const char *fail_file; /* where the failed allocation was asked for */
static int fail_line, teardown, fail_in_teardown;

static int provider_only; /* count only what kcapi-aio's own sources allocate */

static int fail_now(const char *file, int line)
{
    if (!counting || (provider_only && !from_provider(file)) || ++n_alloc != fail_at)
        return 0;
    fail_file = file;
    fail_line = line;
    fail_in_teardown = teardown;
    return 1;
}

static void *a_malloc(size_t n, const char *file, int line)
{
    unsigned char *p;

    if (fail_now(file, line) || (p = malloc(n + HDR)) == NULL)
        return NULL;
    p[0] = (unsigned char)from_provider(file);
    live++;
    live_ours += p[0];
    return p + HDR;
}

static void a_free(void *v, const char *file, int line)
{
    unsigned char *p = v;

    (void)file;
    (void)line;
    if (p == NULL)
        return;
    p -= HDR;
    live--;
    live_ours -= p[0];
    free(p);
}

static void *a_realloc(void *old, size_t n, const char *file, int line)
{
    unsigned char *p;

    if (old == NULL)
        return a_malloc(n, file, line);
    if (n == 0) { /* OpenSSL's realloc to 0 frees */
        a_free(old, file, line);
        return NULL;
    }
    if (fail_now(file, line) || (p = realloc((unsigned char *)old - HDR, n + HDR)) == NULL)
        return NULL;
    return p + HDR;
}

/* ---- the scenario ---- */

static const char *module_dir(void)
{
    const char *d = getenv("KCAPI_AIO_MODULE_DIR");

    return d != NULL && *d ? d : KCAPI_AIO_BUILD_MODULE_DIR;
}

typedef struct {
    unsigned char b[OUT_MAX];
    size_t n;
} outbuf;

static int put(outbuf *o, const unsigned char *p, size_t n)
{
    if (o->n + n > sizeof(o->b))
        return 0;
    memcpy(o->b + o->n, p, n);
    o->n += n;
    return 1;
}

static const unsigned char key[32] = "0123456789abcdef0123456789ABCDE";
static const unsigned char iv[16] = "fedcba987654321";
static unsigned char msg[160];

/* One cipher: init, update, copy the context, finish both; they must agree. */
static int one_cipher(EVP_CIPHER *c, const char *name, outbuf *o)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new(), *d = EVP_CIPHER_CTX_new();
    unsigned char a[200], b[200], ta[16], tb[16];
    int gcm = strstr(name, "GCM") != NULL, la = 0, lb = 0, l = 0, ok;

    ok = c != NULL && x != NULL && d != NULL && EVP_EncryptInit_ex2(x, c, key, iv, NULL);
    ok = ok && (!gcm || EVP_EncryptUpdate(x, NULL, &l, msg, 13));
    ok = ok && EVP_EncryptUpdate(x, a, &la, msg, 37);
    ok = ok && EVP_CIPHER_CTX_copy(d, x);
    lb = la;
    memcpy(b, a, (size_t)la);
    ok = ok && EVP_EncryptUpdate(x, a + la, &l, msg + 37, 100) && (la += l, 1);
    ok = ok && EVP_EncryptUpdate(d, b + lb, &l, msg + 37, 100) && (lb += l, 1);
    ok = ok && EVP_EncryptFinal_ex(x, a + la, &l) && (la += l, 1);
    ok = ok && EVP_EncryptFinal_ex(d, b + lb, &l) && (lb += l, 1);
    if (ok && gcm)
        ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, ta) > 0
             && EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_GET_TAG, 16, tb) > 0;
    if (ok && (la != lb || memcmp(a, b, (size_t)la) != 0 || (gcm && memcmp(ta, tb, 16) != 0))) {
        fprintf(stderr, "allocfail: %s: the copied context gave other bytes\n", name);
        exit(4);
    }
    ok = ok && put(o, a, (size_t)la) && (!gcm || put(o, ta, 16));
    EVP_CIPHER_CTX_free(d);
    EVP_CIPHER_CTX_free(x);
    return ok;
}

/* Two GCM records: one pipeline call where the cipher has one, else one by one. */
static int two_records(EVP_CIPHER *c, outbuf *o)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    unsigned char out[2][80], tag[2][16];
    size_t len[2] = { 50, 70 }, outl[2] = { 0, 0 };
    int ok = c != NULL && x != NULL, i;

#if OPENSSL_VERSION_NUMBER >= 0x30500000L
    if (ok && EVP_CIPHER_can_pipeline(c, 1)) {
        const unsigned char *ivs[2] = { iv, iv + 4 }, *in[2] = { msg, msg + 60 };
        unsigned char *op[2] = { out[0], out[1] }, *tp[2] = { tag[0], tag[1] }, **tpp = tp;
        size_t outsize[2] = { 80, 80 }, fl[2];
        OSSL_PARAM p[2];

        ok = EVP_CipherPipelineEncryptInit(x, c, key, 16, 2, ivs, 12)
             && EVP_CipherPipelineUpdate(x, op, outl, outsize, in, len);
        op[0] += outl[0];
        op[1] += outl[1];
        ok = ok && EVP_CipherPipelineFinal(x, op, fl, outsize);
        p[0] = OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, (void **)&tpp, 16);
        p[1] = OSSL_PARAM_construct_end();
        ok = ok && EVP_CIPHER_CTX_get_params(x, p);
        goto done;
    }
#endif
    for (i = 0; ok && i < 2; i++) {
        int l = 0, l2 = 0;

        ok = EVP_EncryptInit_ex2(x, c, key, iv + 4 * i, NULL)
             && EVP_EncryptUpdate(x, out[i], &l, msg + 60 * i, (int)len[i])
             && EVP_EncryptFinal_ex(x, out[i] + l, &l2)
             && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag[i]) > 0;
        outl[i] = (size_t)(l + l2);
    }
    goto done; /* keeps the label used in 3.0 builds */
done:
    for (i = 0; ok && i < 2; i++)
        ok = outl[i] == len[i] && put(o, out[i], len[i]) && put(o, tag[i], 16);
    EVP_CIPHER_CTX_free(x);
    return ok;
}

/* kcapi-aio's counters at the end of the scenario, hashed: a run whose hash differs
 * from the fault-free run's took another path (the injected fault was hit). */
static unsigned long long counters_hash;

static void read_counters(OSSL_PROVIDER *p)
{
    static char text[8192];
    OSSL_PARAM params[2] = { OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_COUNTERS, text, sizeof(text)),
                             OSSL_PARAM_END };
    const char *c;

    text[0] = '\0';
    counters_hash = 0;
    if (p == NULL || !OSSL_PROVIDER_get_params(p, params))
        return;
    counters_hash = 1469598103934665603ULL;
    for (c = text; *c; c++)
        counters_hash = (counters_hash ^ (unsigned char)*c) * 1099511628211ULL;
}

/* ops_only: count (and fail) only what follows load and fetch: the cipher work. */
static int scenario(const char *prov_name, const char *dir, outbuf *o, int ops_only)
{
    static const char *const names[] = { "AES-128-CBC", "AES-192-CTR", "AES-256-GCM", "AES-128-GCM" };
    EVP_CIPHER *c[4] = { NULL, NULL, NULL, NULL };
    OSSL_LIB_CTX *lc;
    OSSL_PROVIDER *p = NULL;
    size_t i;
    int ok;

    counting = !ops_only;
    lc = OSSL_LIB_CTX_new();
    ok = lc != NULL && (dir == NULL || OSSL_PROVIDER_set_default_search_path(lc, dir))
         && (p = OSSL_PROVIDER_load(lc, prov_name)) != NULL;
    for (i = 0; ok && i < 4; i++)
        ok = (c[i] = EVP_CIPHER_fetch(lc, names[i], NULL)) != NULL;
    counting = 1;
    o->n = 0;
    for (i = 0; ok && i < 3; i++)
        ok = one_cipher(c[i], names[i], o);
    ok = ok && two_records(c[3], o);
    for (i = 0; i < 4; i++)
        EVP_CIPHER_free(c[i]);
    if (strcmp(prov_name, KCAPI_AIO_NAME) == 0)
        read_counters(p);
    teardown = 1;
    OSSL_PROVIDER_unload(p);
    OSSL_LIB_CTX_free(lc);
    teardown = 0;
    counting = 0;
    return ok;
}

/* ---- parent and children ---- */

enum { CHILD_OK = 0, CHILD_MISMATCH = 4, CHILD_LEAK = 5, CHILD_SETUP = 6 };

/* In a child: run the scenario with the k-th OpenSSL allocation failing (0:
 * none); report "E" or the bytes through the pipe; check that nothing leaked. */
static int ops_only;

static int child(int fd, unsigned long k, const char *engine_fault)
{
    static outbuf o;
    char tag;
    int ok;

    if (!CRYPTO_set_mem_functions(a_malloc, a_realloc, a_free))
        return CHILD_SETUP;
    /* libcrypto's own error paths leak under a failing allocation (OpenSSL 3.0),
     * so these runs are judged by the count below, which tells kcapi-aio's blocks
     * apart, and end with _exit() (no LeakSanitizer); the engine runs, where
     * libcrypto never fails, end with exit() and LeakSanitizer's check. */
    if (engine_fault != NULL)
        setenv("KCAPI_AIO_FAULT", engine_fault, 1);
    fail_at = engine_fault != NULL ? 0 : k;
    ok = scenario(KCAPI_AIO_NAME, module_dir(), &o, ops_only);
    ERR_clear_error();
    tag = ok ? 'R' : 'E';
    if (write(fd, &tag, 1) != 1 || (ok && write(fd, o.b, o.n) != (ssize_t)o.n)
        || write(fd, &counters_hash, sizeof(counters_hash)) != sizeof(counters_hash))
        return CHILD_SETUP;
    if (k == 0 && engine_fault == NULL) {
        /* The counting run also reports the count, then checks the bytes. */
        unsigned long n = n_alloc;
        static outbuf ref;

        fail_at = 0;
        if (!ok || !scenario("default", NULL, &ref, 1)) {
            fprintf(stderr, "allocfail: the scenario failed without a fault\n");
            ERR_print_errors_fp(stderr);
            return CHILD_SETUP;
        }
        if (ref.n != o.n || memcmp(ref.b, o.b, o.n) != 0) {
            fprintf(stderr, "allocfail: kcapi-aio and the default provider disagree\n");
            return CHILD_MISMATCH;
        }
        if (write(fd, &n, sizeof(n)) != sizeof(n))
            return CHILD_SETUP;
    }
    OPENSSL_cleanup();
    if (live_ours != 0 && fail_in_teardown && !from_provider(fail_file)) {
        /* libcrypto's own teardown failed an allocation and skipped freeing the
         * provider (seen: ex_data.c while freeing the library context). */
        fprintf(stderr, "allocfail: note: k=%lu: libcrypto's teardown failed at %s:%d and left %ld of "
                "kcapi-aio's blocks\n", k, fail_file, fail_line, live_ours);
    } else if (live_ours != 0) {
        fprintf(stderr, "allocfail: k=%lu%s%s: %ld of kcapi-aio's allocations not freed (the failed one: %s:%d)\n",
                k, engine_fault ? " " : "", engine_fault ? engine_fault : "", live_ours,
                fail_file ? fail_file : "-", fail_line);
        return CHILD_LEAK;
    }
    if (live != 0) {
        /* Only libcrypto's own blocks: its error path, reported, not ours to fix. */
        fprintf(stderr, "allocfail: note: k=%lu: %ld of libcrypto's own allocations not freed\n", k, live);
        if (engine_fault != NULL || k == 0)
            return CHILD_LEAK; /* no libcrypto allocation failed: this one is real */
    }
    return CHILD_OK;
}

typedef struct {
    int status;
    char tag;
    outbuf o;
    unsigned long count;
    unsigned long long hash;
} result;

static int run_child(unsigned long k, const char *engine_fault, result *r)
{
    int fds[2], st;
    pid_t pid;
    size_t got = 0;
    ssize_t n;
    unsigned char buf[OUT_MAX + 1 + sizeof(unsigned long)];

    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0 || (pid = fork()) < 0) {
        perror("allocfail: pipe/fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        int rc = child(fds[1], k, engine_fault);

        /* LeakSanitizer (ASan builds) checks at exit(): the engine runs and the
         * fault-free run; the OpenSSL runs are judged by the count instead. */
        if (k > 0 && engine_fault == NULL)
            _exit(rc);
        exit(rc);
    }
    close(fds[1]);
    while ((n = read(fds[0], buf + got, sizeof(buf) - got)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            got += (size_t)n;
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->status = st;
    r->tag = got > 0 ? (char)buf[0] : '?';
    r->o.n = 0;
    r->count = 0;
    if (r->tag == 'R' || r->tag == 'E') {
        size_t body = got - 1;

        if (k == 0 && engine_fault == NULL) {
            if (body < sizeof(r->count))
                return 0;
            body -= sizeof(r->count);
            memcpy(&r->count, buf + 1 + body, sizeof(r->count));
        }
        if (body < sizeof(r->hash))
            return 0;
        body -= sizeof(r->hash);
        memcpy(&r->hash, buf + 1 + body, sizeof(r->hash));
        memcpy(r->o.b, buf + 1, body);
        r->o.n = body;
    }
    return 1;
}

/* 1 when one run ended well: exit 0, and bytes equal to the fault-free run's. */
static int judge(const char *what, unsigned long k, const result *r, const result *base,
                 unsigned long *n_err, unsigned long *n_ok)
{
    if (WIFSIGNALED(r->status)) {
        fprintf(stderr, "FAIL %s k=%lu: killed by signal %d\n", what, k, WTERMSIG(r->status));
        return 0;
    }
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
        fprintf(stderr, "FAIL %s k=%lu: exit status %d (leak or crash; see above)\n", what, k,
                WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1);
        return 0;
    }
    if (r->tag == 'E') {
        ++*n_err;
        return 1;
    }
    if (r->tag != 'R' || r->o.n != base->o.n || memcmp(r->o.b, base->o.b, base->o.n) != 0) {
        fprintf(stderr, "FAIL %s k=%lu: succeeded with other bytes (%zu vs %zu)\n", what, k, r->o.n,
                base->o.n);
        return 0;
    }
    ++*n_ok;
    return 1;
}

int main(void)
{
    static result base, r;
    unsigned long k, n_err = 0, n_ok = 0, e_err = 0, e_ok = 0, e_hit = 0, emax = 48, failed = 0;
    const char *s = getenv("ALLOCFAIL_ENGINE_MAX");
    int verbose = getenv("ALLOCFAIL_VERBOSE") != NULL;
    size_t i;

    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    if (s != NULL)
        emax = strtoul(s, NULL, 10);
    s = getenv("ALLOCFAIL_SCOPE");
    ops_only = s != NULL && (strcmp(s, "ops") == 0 || strcmp(s, "provider") == 0);
    provider_only = s != NULL && strcmp(s, "provider") == 0;
    /* The parent never calls OpenSSL: each child sets its allocator first. */
    if (!run_child(0, NULL, &base) || !WIFEXITED(base.status) || WEXITSTATUS(base.status) != 0
        || base.tag != 'R' || base.count == 0) {
        fprintf(stderr, "FAIL: the fault-free run failed\n");
        return 1;
    }
    printf("allocfail: the scenario (%s) makes %lu OpenSSL allocations, %zu bytes of output (equal to the "
           "default provider's)\n", provider_only ? "kcapi-aio's own, after load and fetch" : ops_only ? "after load and fetch" : "whole", base.count, base.o.n);
    fflush(stdout);
    s = getenv("ALLOCFAIL_ONLY");
    for (k = s != NULL ? strtoul(s, NULL, 10) : 1; k <= base.count; k++) {
        if (!run_child(k, NULL, &r) || !judge("openssl", k, &r, &base, &n_err, &n_ok))
            failed++;
        if (verbose)
            printf("openssl k=%lu: %c\n", k, r.tag);
        if (failed > 5 || getenv("ALLOCFAIL_ONLY") != NULL)
            break;
    }
    printf("allocfail: OpenSSL allocation k=1..%lu failing: %lu clean errors, %lu correct results, %lu "
           "failures\n", base.count, n_err, n_ok, failed);
    for (k = 1; k <= emax && failed <= 5; k++) {
        char spec[64];

        snprintf(spec, sizeof(spec), "malloc=ENOMEM:%lu", k);
        if (!run_child(k, spec, &r) || !judge("engine", k, &r, &base, &e_err, &e_ok))
            failed++;
        e_hit += r.tag == 'E' || r.hash != base.hash;
        if (verbose)
            printf("engine k=%lu: %c\n", k, r.tag);
    }
    printf("allocfail: engine allocation k=1..%lu failing: %lu clean errors, %lu correct results; the fault "
           "changed the outcome or the path taken (counters) in %lu runs\n", emax, e_err, e_ok, e_hit);
    if (failed) {
        printf("allocfail: %lu runs FAILED\n", failed);
        return 1;
    }
    return 0;
}
