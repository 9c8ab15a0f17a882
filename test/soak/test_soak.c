/*
 * Soak: rounds of 8 threads, each encrypting and decrypting records with keys
 * that change every few records, over all nine ciphers, as single calls and
 * (OpenSSL 3.5+) as pipelines of 1..8 records; between rounds a forked child
 * uses a context its parent keyed and makes its own. Every output is compared
 * with the default provider. Faults come from KCAPI_AIO_FAULT (the kernel lab
 * sets a few). Bounded by counts (SOAK_ROUNDS, SOAK_RECORDS per thread and
 * round), never by time.
 *
 * At the end the fd count and VmRSS must be back where they were after the
 * first round (the warm-up): fds exactly, memory within SOAK_RSS_SLACK_KB
 * (default 8192). All three readings are printed.
 *
 * Environment: KCAPI_AIO_MODULE_DIR, SOAK_ROUNDS (default 6), SOAK_RECORDS
 * (default 200), SOAK_RSS_SLACK_KB, SOAK_KERNELS (in the kernel lab: run only
 * on these KLAB_KERNEL values, default "6.12"; "all" for every kernel; and
 * only in a build against OpenSSL 3.5+).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"

#define THREADS 8
#define MAXLEN 3000
#define NPIPE 8

static const char *const ciphers[9] = {
    "AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "AES-128-CTR", "AES-192-CTR",
    "AES-256-CTR", "AES-128-GCM", "AES-192-GCM", "AES-256-GCM",
};

static OSSL_LIB_CTX *lc[2]; /* 0: kcapi-aio, 1: default */
static OSSL_PROVIDER *pv[2];
static EVP_CIPHER *ciph[2][9];
static unsigned records = 200;

static int is_gcm(int ci) { return ci >= 6; }
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
static size_t keylen(int ci) { return (size_t)16 + 8 * (size_t)(ci % 3); }
#endif

static unsigned long long rnd(unsigned long long *s)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill(unsigned long long *s, unsigned char *p, size_t n)
{
    while (n--)
        *p++ = (unsigned char)rnd(s);
}

/* One record on one side: encrypt (enc=1) or decrypt; tag out or in. */
static int record(int side, int ci, int enc, const unsigned char *key, const unsigned char *iv,
                  const unsigned char *in, size_t inl, unsigned char *out, size_t *outl, unsigned char *tag)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, m = 0, ok;

    ok = x != NULL && EVP_CipherInit_ex2(x, ciph[side][ci], key, iv, enc, NULL);
    if (ok && is_gcm(ci)) {
        ok = EVP_CipherUpdate(x, NULL, &n, key, 13); /* some AAD */
        if (ok && !enc)
            ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag) > 0;
    }
    ok = ok && EVP_CipherUpdate(x, out, &n, in, (int)inl) && EVP_CipherFinal_ex(x, out + n, &m);
    if (ok && is_gcm(ci) && enc)
        ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0;
    *outl = (size_t)(n + m);
    EVP_CIPHER_CTX_free(x);
    return ok;
}

#if OPENSSL_VERSION_NUMBER >= 0x30500000L
/* n records in one pipeline call on kcapi-aio, each compared with the default provider. */
static int pipeline(int ci, const unsigned char *key, unsigned long long *s, char *why, size_t whylen)
{
    static __thread unsigned char in[NPIPE][MAXLEN], out[NPIPE][MAXLEN + 32], ref[NPIPE][MAXLEN + 32];
    unsigned char ivs[NPIPE][16], tags[NPIPE][16], rtag[NPIPE][16];
    const unsigned char *ivp[NPIPE], *inp[NPIPE], *aadp[NPIPE];
    unsigned char *outp[NPIPE], *tagp[NPIPE], **tagpp = tagp;
    size_t n = 1 + rnd(s) % NPIPE, len[NPIPE], outl[NPIPE], fl[NPIPE], size[NPIPE], aadl[NPIPE], i, rl;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[2];
    int ok;

    for (i = 0; i < n; i++) {
        len[i] = rnd(s) % MAXLEN;
        fill(s, in[i], len[i]);
        fill(s, ivs[i], 16);
        ivp[i] = ivs[i];
        inp[i] = in[i];
        outp[i] = out[i];
        tagp[i] = tags[i];
        aadp[i] = key;
        aadl[i] = 13;
        size[i] = MAXLEN + 32;
    }
    ok = x != NULL && EVP_CipherPipelineEncryptInit(x, ciph[0][ci], key, keylen(ci), n, ivp, is_gcm(ci) ? 12 : 16);
    if (ok && is_gcm(ci))
        ok = EVP_CipherPipelineUpdate(x, NULL, outl, NULL, aadp, aadl);
    ok = ok && EVP_CipherPipelineUpdate(x, outp, outl, size, inp, len);
    for (i = 0; ok && i < n; i++) {
        outp[i] = out[i] + outl[i];
        size[i] = MAXLEN + 32 - outl[i];
    }
    ok = ok && EVP_CipherPipelineFinal(x, outp, fl, size);
    if (ok && is_gcm(ci)) {
        p[0] = OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, (void **)&tagpp, 16);
        p[1] = OSSL_PARAM_construct_end();
        ok = EVP_CIPHER_CTX_get_params(x, p);
    }
    EVP_CIPHER_CTX_free(x);
    if (!ok) {
        snprintf(why, whylen, "%s pipeline of %zu failed", ciphers[ci], n);
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!record(1, ci, 1, key, ivs[i], in[i], len[i], ref[i], &rl, rtag[i]) || rl != outl[i] + fl[i]
            || memcmp(ref[i], out[i], rl) != 0 || (is_gcm(ci) && memcmp(rtag[i], tags[i], 16) != 0)) {
            snprintf(why, whylen, "%s pipeline of %zu: record %zu differs", ciphers[ci], n, i);
            return 0;
        }
    }
    return 1;
}
#endif

struct job {
    unsigned long long seed;
    unsigned long ops, pipes, mismatches;
    char why[160];
};

static void *worker(void *arg)
{
    struct job *j = arg;
    static __thread unsigned char pt[MAXLEN], a[MAXLEN + 32], b[MAXLEN + 32], back[MAXLEN + 32];
    unsigned char key[32], iv[16], ta[16], tb[16];
    unsigned r;

    fill(&j->seed, key, sizeof(key));
    for (r = 0; r < records; r++) {
        int ci = (int)(rnd(&j->seed) % 9);
        size_t len = rnd(&j->seed) % MAXLEN, la, lb, lback;

        if (r % 5 == 0)
            fill(&j->seed, key, sizeof(key)); /* keys change */
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
        if (r % 7 == 3) {
            if (!pipeline(ci, key, &j->seed, j->why, sizeof(j->why)))
                j->mismatches++;
            j->pipes++;
            continue;
        }
#endif
        if (ci < 3 && r % 2)
            len -= len % 16; /* half the CBC records end on a block */
        fill(&j->seed, pt, len);
        fill(&j->seed, iv, sizeof(iv));
        j->ops++;
        if (!record(0, ci, 1, key, iv, pt, len, a, &la, ta) || !record(1, ci, 1, key, iv, pt, len, b, &lb, tb)
            || la != lb || memcmp(a, b, la) != 0 || (is_gcm(ci) && memcmp(ta, tb, 16) != 0)) {
            snprintf(j->why, sizeof(j->why), "%s: %zu-byte record encrypted differently", ciphers[ci], len);
            j->mismatches++;
            continue;
        }
        if (!record(0, ci, 0, key, iv, a, la, back, &lback, ta) || lback != len || memcmp(back, pt, len) != 0) {
            snprintf(j->why, sizeof(j->why), "%s: %zu-byte record did not decrypt back", ciphers[ci], len);
            j->mismatches++;
        }
    }
    ERR_clear_error();
    return NULL;
}

/* A child of a parent that keyed a context: it uses that one and a new one. */
static int fork_check(unsigned round)
{
    int ci = (int)(round % 9), st;
    unsigned char key[32], iv[16], pt[100], a[140], b[140], ta[16], tb[16];
    size_t la, lb;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    pid_t pid;

    memset(key, (int)round, sizeof(key));
    memset(iv, 7, sizeof(iv));
    memset(pt, 3, sizeof(pt));
    if (x == NULL || !EVP_EncryptInit_ex2(x, ciph[0][ci], key, iv, NULL))
        return 0;
    fflush(stdout);
    if ((pid = fork()) < 0)
        return 0;
    if (pid == 0) {
        int n = 0, m = 0, step = 1, ok;

        /* The same AAD as record() gives a GCM record. */
        ok = (!is_gcm(ci) || EVP_EncryptUpdate(x, NULL, &n, key, 13))
             && EVP_EncryptUpdate(x, a, &n, pt, 100) && EVP_EncryptFinal_ex(x, a + n, &m);

        if (ok && is_gcm(ci))
            ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, ta) > 0;
        ok = ok && (step = 2, record(1, ci, 1, key, iv, pt, 100, b, &lb, tb)) && (step = 3, (size_t)(n + m) == lb)
             && memcmp(a, b, lb) == 0 && (!is_gcm(ci) || memcmp(ta, tb, 16) == 0);
        ok = ok && (step = 4, record(0, ci, 1, key, iv, pt, 100, a, &la, ta)) && la == lb && memcmp(a, b, lb) == 0;
        if (!ok) {
            fprintf(stderr, "soak: forked child, %s: step %d failed (1 parent's context, 2 reference, "
                    "3 bytes of the parent's context, 4 a new context)\n", ciphers[ci], step);
            ERR_print_errors_fp(stderr);
        }
        _exit(ok ? 0 : 1);
    }
    EVP_CIPHER_CTX_free(x);
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static long fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* What each open fd is (socket, eventfd, file), to tell a leak's kind. */
static void list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], target[256];
        ssize_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        printf("soak:   fd %s -> %s\n", e->d_name, target);
    }
    if (d != NULL)
        closedir(d);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

static int load(int side, const char *name, const char *dir)
{
    int i;

    if ((lc[side] = OSSL_LIB_CTX_new()) == NULL)
        return 0;
    if (dir != NULL)
        OSSL_PROVIDER_set_default_search_path(lc[side], dir);
    if ((pv[side] = OSSL_PROVIDER_load(lc[side], name)) == NULL)
        return 0;
    for (i = 0; i < 9; i++)
        if ((ciph[side][i] = EVP_CIPHER_fetch(lc[side], ciphers[i], NULL)) == NULL)
            return 0;
    return 1;
}

int main(void)
{
    const char *e, *dir = getenv("KCAPI_AIO_MODULE_DIR"), *kernel = getenv("KLAB_KERNEL");
    unsigned rounds = 6, round, t;
    unsigned long ops = 0, pipes = 0, bad = 0, forks_bad = 0, slack = 8192;
    long fd0, rss0, fd1 = 0, rss1 = 0, fd2, rss2;
    int i;

    if (kernel != NULL) {
        const char *want = (e = getenv("SOAK_KERNELS")) != NULL ? e : "6.12";

        if (strcmp(want, "all") != 0 && strstr(want, kernel) == NULL) {
            printf("SKIP: the soak runs on kernel %s only (SOAK_KERNELS=all for every kernel)\n", want);
            return 77;
        }
#if OPENSSL_VERSION_NUMBER < 0x30500000L
        printf("SKIP: in the kernel lab the soak runs in the OpenSSL 3.5 build, which has pipelines\n");
        return 77;
#endif
    }
    if ((e = getenv("SOAK_ROUNDS")) != NULL)
        rounds = (unsigned)strtoul(e, NULL, 10);
    if ((e = getenv("SOAK_RECORDS")) != NULL)
        records = (unsigned)strtoul(e, NULL, 10);
    if ((e = getenv("SOAK_RSS_SLACK_KB")) != NULL)
        slack = strtoul(e, NULL, 10);
    if (rounds < 2)
        rounds = 2;
    fd0 = fds();
    rss0 = rss_kb();
    if (!load(0, KCAPI_AIO_NAME, dir != NULL && *dir ? dir : KCAPI_AIO_BUILD_MODULE_DIR) || !load(1, "default", NULL)) {
        fprintf(stderr, "FAIL: cannot load the providers\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    for (round = 0; round < rounds; round++) {
        pthread_t th[THREADS];
        struct job jobs[THREADS];

        for (t = 0; t < THREADS; t++) {
            memset(&jobs[t], 0, sizeof(jobs[t]));
            jobs[t].seed = 0x50a4000000ULL + round * 131 + t;
            if (pthread_create(&th[t], NULL, worker, &jobs[t]) != 0) {
                fprintf(stderr, "FAIL: pthread_create\n");
                return 1;
            }
        }
        for (t = 0; t < THREADS; t++) {
            pthread_join(th[t], NULL);
            ops += jobs[t].ops;
            pipes += jobs[t].pipes;
            bad += jobs[t].mismatches;
            if (jobs[t].mismatches)
                fprintf(stderr, "MISMATCH round %u thread %u: %lu, last: %s\n", round, t, jobs[t].mismatches,
                        jobs[t].why);
        }
        if (!fork_check(round)) {
            forks_bad++;
            fprintf(stderr, "FAIL round %u: the forked child got other bytes or failed\n", round);
        }
        if (round == 0) {
            fd1 = fds();
            rss1 = rss_kb();
        }
    }
    fd2 = fds();
    rss2 = rss_kb();
    printf("soak: %u rounds x %d threads: %lu single records (encrypt + decrypt), %lu pipelines, %u forks; "
           "%lu mismatches, %lu fork failures\n", rounds, THREADS, ops, pipes, rounds, bad, forks_bad);
    printf("soak: fds start %ld, after warm-up %ld, end %ld; VmRSS kB start %ld, after warm-up %ld, end %ld\n",
           fd0, fd1, fd2, rss0, rss1, rss2);
    for (i = 0; i < 9; i++) {
        EVP_CIPHER_free(ciph[0][i]);
        EVP_CIPHER_free(ciph[1][i]);
    }
    for (i = 0; i < 2; i++) {
        OSSL_PROVIDER_unload(pv[i]);
        OSSL_LIB_CTX_free(lc[i]);
    }
    if (fd2 != fd1) {
        printf("FAIL: the fd count moved after the warm-up (%ld -> %ld)\n", fd1, fd2);
        list_fds();
        return 1;
    }
    if (bad || forks_bad)
        return 1;
    if (rss2 > rss1 + (long)slack) {
        printf("FAIL: VmRSS grew by %ld kB after the warm-up (slack %lu kB)\n", rss2 - rss1, slack);
        return 1;
    }
    return 0;
}
