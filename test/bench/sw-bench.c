/*
 * Software path benchmark (not a test): kcapi-aio against OpenSSL's default
 * provider, one record at a time through ordinary EVP calls, as a TLS stack
 * or `openssl speed -evp` uses a cipher. Prints ratios only (kcapi-aio /
 * default, > 1: kcapi-aio faster): the median of paired runs, with min-max.
 *
 *   sw-bench [--runs R] [--seconds S | --records N] [--sizes 64,1024,16384] [--threads T]
 *            [--clock cpu|wall]
 *
 * Times are the benchmarking thread's CPU time unless --clock wall: on a
 * shared machine, time spent preempted is not the cipher's.
 *
 * Each measurement runs the same records on both providers, in alternating
 * order, so drift hits both. Records are processed in place, each record's
 * input being the previous record's output (and GCM tags are folded into an
 * accumulator): the final buffer and tag equal the default provider's only if
 * every record's bytes did. A difference prints WRONG and exits 1.
 *
 * --threads T adds a second table: T threads side by side, each with its own
 * context, on each provider; scaling = (rate per thread with T threads / rate
 * of one thread alone) per provider, and the figure printed is kcapi-aio's
 * scaling / the default provider's (1.0: kcapi-aio scales as well; a shared
 * cache line written per record would show as a lower figure).
 *
 * kcapi-aio is loaded from $KCAPI_AIO_MODULE_DIR (else the build tree) into a
 * library context of its own, next to default, and fetched with
 * "provider=kcapi-aio"; the reference is a library context with default only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#ifndef KCAPI_AIO_BUILD_MODULE_DIR
#define KCAPI_AIO_BUILD_MODULE_DIR "."
#endif

struct job {
    const char *cipher;
    int enc;
    int gcm;
    int cbc;
};

static const struct job jobs[] = {
    { "AES-128-GCM", 1, 1, 0 },
    { "AES-256-GCM", 1, 1, 0 },
    { "AES-128-CBC", 1, 0, 1 },
    { "AES-128-CBC", 0, 0, 1 },
    { "AES-256-CTR", 1, 0, 0 },
};
#define NJOBS (sizeof(jobs) / sizeof(jobs[0]))
#define MAXSIZES 8
#define MAXRUNS 101
#define MAXTHREADS 16

static const unsigned char key[32] = "kcapi-aio sw-bench key, 32 byte";
static const unsigned char aad[13] = "tls-like aad";

/* The calling thread's CPU time by default: on a shared machine, time spent
 * preempted is nobody's work (--clock wall for elapsed time). */
static clockid_t clock_id = CLOCK_THREAD_CPUTIME_ID;

static double now(void)
{
    struct timespec ts;

    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "sw-bench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* One side's result: the final buffer and the XOR of every GCM tag. */
struct result {
    unsigned char *buf;
    unsigned char tags[16];
    double secs;
};

/* n records of len bytes, in place, one context keyed once. */
static void run_side(EVP_CIPHER *c, const struct job *j, size_t len, long n, struct result *r)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char iv[16] = "sw-bench iv 16b", tag[16];
    size_t i;
    long k;
    int l, l2;
    double t0;

    for (i = 0; i < len; i++)
        r->buf[i] = (unsigned char)(i * 131 + 7);
    memset(r->tags, 0, sizeof(r->tags));
    if (ctx == NULL || !EVP_CipherInit_ex2(ctx, c, key, j->gcm ? NULL : iv, j->enc, NULL)
        || (j->cbc && !EVP_CIPHER_CTX_set_padding(ctx, 0)))
        die("init");
    t0 = now();
    for (k = 0; k < n; k++) {
        if (j->gcm) {
            iv[11] = (unsigned char)k; /* a fresh nonce per record, as TLS has */
            if (!EVP_CipherInit_ex2(ctx, NULL, NULL, iv, j->enc, NULL)
                || !EVP_CipherUpdate(ctx, NULL, &l, aad, sizeof(aad))
                || !EVP_CipherUpdate(ctx, r->buf, &l, r->buf, (int)len) || (size_t)l != len
                || !EVP_CipherFinal_ex(ctx, r->buf + l, &l2)
                || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) <= 0)
                die("GCM record");
            for (i = 0; i < 16; i++)
                r->tags[i] ^= tag[i];
        } else if (!EVP_CipherUpdate(ctx, r->buf, &l, r->buf, (int)len) || (size_t)l != len) {
            die("record");
        }
    }
    r->secs = now() - t0;
    EVP_CIPHER_CTX_free(ctx);
}

static int same(const struct result *a, const struct result *b, size_t len)
{
    return memcmp(a->buf, b->buf, len) == 0 && memcmp(a->tags, b->tags, 16) == 0;
}

static void check(const struct result *ref, const struct result *got, const struct job *j,
                  size_t len, const char *what)
{
    if (!same(ref, got, len)) {
        printf("WRONG: %s %s %zu B (%s): kcapi-aio's bytes differ from the default provider's\n",
               j->cipher, j->enc ? "encrypt" : "decrypt", len, what);
        exit(1);
    }
}

/* ---- threads ---- */

struct thr {
    EVP_CIPHER *c;
    const struct job *j;
    size_t len;
    long n;
    struct result r;
    pthread_barrier_t *go;
};

static void *thr_main(void *v)
{
    struct thr *t = v;

    pthread_barrier_wait(t->go);
    run_side(t->c, t->j, t->len, t->n, &t->r);
    return NULL;
}

/*
 * T threads at once, every thread's bytes checked against ref. Returns the
 * time per thread: with the CPU clock, the mean of the threads' own CPU times
 * (what the same records cost when threads run side by side); with the wall
 * clock, the elapsed time divided by T.
 */
static double run_threads(EVP_CIPHER *c, const struct job *j, size_t len, long n, int nthr,
                          const struct result *ref, const char *what)
{
    double cpu = 0;
    pthread_t tid[MAXTHREADS];
    struct thr t[MAXTHREADS];
    pthread_barrier_t go;
    double t0;
    int i;

    pthread_barrier_init(&go, NULL, (unsigned)nthr + 1);
    for (i = 0; i < nthr; i++) {
        t[i] = (struct thr){ c, j, len, n, { malloc(len + 16), { 0 }, 0 }, &go };
        if (t[i].r.buf == NULL || pthread_create(&tid[i], NULL, thr_main, &t[i]) != 0)
            die("thread");
    }
    pthread_barrier_wait(&go);
    t0 = wall();
    for (i = 0; i < nthr; i++)
        pthread_join(tid[i], NULL);
    t0 = wall() - t0;
    for (i = 0; i < nthr; i++) {
        check(ref, &t[i].r, j, len, what);
        cpu += t[i].r.secs;
        free(t[i].r.buf);
    }
    pthread_barrier_destroy(&go);
    return clock_id == CLOCK_MONOTONIC ? t0 / nthr : cpu / nthr;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* "median (min-max)" of n figures. */
static const char *summary(double *v, int n, char *buf, size_t size)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    snprintf(buf, size, "%.2f (%.2f-%.2f)", n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0],
             v[n - 1]);
    return buf;
}

/* The table's first line: one column per record size. */
static void print_head(const size_t *sizes, int nsizes)
{
    int si;

    printf("%-22s", "cipher");
    for (si = 0; si < nsizes; si++)
        printf(" %18zu B", sizes[si]);
    printf("\n");
}

/* Both providers' cipher of a job (kcapi-aio's must really be kcapi-aio's); prints the row label. */
static void fetch_job(OSSL_LIB_CTX *lc_ours, OSSL_LIB_CTX *lc_ref, const struct job *j, EVP_CIPHER **ours,
                      EVP_CIPHER **ref)
{
    char label[32];

    *ours = EVP_CIPHER_fetch(lc_ours, j->cipher, "provider=kcapi-aio");
    *ref = EVP_CIPHER_fetch(lc_ref, j->cipher, NULL);
    if (*ours == NULL || *ref == NULL)
        die(j->cipher);
    if (strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(*ours)), "kcapi-aio") != 0)
        die("the fetched cipher is not kcapi-aio's");
    snprintf(label, sizeof(label), "%s %s", j->cipher, j->enc ? "encrypt" : "decrypt");
    printf("%-22s", label);
    fflush(stdout);
}

/* Records per run: fixed, or about `seconds` per side and run, from a short trial on ref. */
static long records_per_run(EVP_CIPHER *ref, const struct job *j, size_t len, long fixed, double seconds,
                            struct result *rr)
{
    long n = fixed;

    if (n <= 0) {
        run_side(ref, j, len, 200, rr);
        n = (long)(seconds * 200 / (rr->secs > 1e-7 ? rr->secs : 1e-7));
        n = n < 200 ? 200 : n;
    }
    return n;
}

int main(int argc, char **argv)
{
    size_t sizes[MAXSIZES] = { 64, 1024, 16384 };
    int nsizes = 3, runs = 5, nthr = 0, a;
    double seconds = 0.2;
    long fixed = 0;
    const char *dir = getenv("KCAPI_AIO_MODULE_DIR");
    OSSL_LIB_CTX *lc_ours, *lc_ref;
    size_t ji;
    int si;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--runs") == 0 && a + 1 < argc)
            runs = atoi(argv[++a]);
        else if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc)
            seconds = atof(argv[++a]);
        else if (strcmp(argv[a], "--records") == 0 && a + 1 < argc)
            fixed = atol(argv[++a]);
        else if (strcmp(argv[a], "--threads") == 0 && a + 1 < argc)
            nthr = atoi(argv[++a]);
        else if (strcmp(argv[a], "--clock") == 0 && a + 1 < argc) {
            a++;
            if (strcmp(argv[a], "wall") == 0)
                clock_id = CLOCK_MONOTONIC;
            else if (strcmp(argv[a], "cpu") != 0)
                die("--clock cpu or wall");
        }
        else if (strcmp(argv[a], "--sizes") == 0 && a + 1 < argc) {
            char *s = argv[++a], *end;

            for (nsizes = 0; *s && nsizes < MAXSIZES; s = *end ? end + 1 : end) {
                sizes[nsizes] = strtoul(s, &end, 10);
                if (end == s || sizes[nsizes] == 0 || sizes[nsizes] > (1u << 20))
                    die("--sizes: positive numbers up to 1 MiB, comma-separated");
                nsizes++;
            }
        } else {
            fprintf(stderr, "usage: %s [--runs R] [--seconds S | --records N] [--sizes 64,1024,16384] "
                    "[--threads T] [--clock cpu|wall]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > MAXRUNS || nthr < 0 || nthr > MAXTHREADS || nsizes == 0)
        die("bad arguments");
    if ((lc_ours = OSSL_LIB_CTX_new()) == NULL || (lc_ref = OSSL_LIB_CTX_new()) == NULL)
        die("library contexts");
    OSSL_PROVIDER_set_default_search_path(lc_ours, dir != NULL && *dir ? dir : KCAPI_AIO_BUILD_MODULE_DIR);
    if (OSSL_PROVIDER_load(lc_ours, "kcapi-aio") == NULL || OSSL_PROVIDER_load(lc_ours, "default") == NULL
        || OSSL_PROVIDER_load(lc_ref, "default") == NULL)
        die("cannot load kcapi-aio and default");

    printf("kcapi-aio / default, records/s ratio (> 1: kcapi-aio faster), median (min-max) of %d paired runs, "
           "%s time\n", runs, clock_id == CLOCK_MONOTONIC ? "wall" : "CPU");
    print_head(sizes, nsizes);
    for (ji = 0; ji < NJOBS; ji++) {
        const struct job *j = &jobs[ji];
        EVP_CIPHER *ours, *ref;
        char sbuf[64];

        fetch_job(lc_ours, lc_ref, j, &ours, &ref);
        for (si = 0; si < nsizes; si++) {
            size_t len = sizes[si];
            struct result rr = { malloc(len + 16), { 0 }, 0 }, ro = { malloc(len + 16), { 0 }, 0 };
            double ratio[MAXRUNS];
            long n;
            int r;

            if (rr.buf == NULL || ro.buf == NULL)
                die("memory");
            n = records_per_run(ref, j, len, fixed, seconds, &rr);
            for (r = 0; r < runs; r++) {
                if (r % 2 == 0) {
                    run_side(ref, j, len, n, &rr);
                    run_side(ours, j, len, n, &ro);
                } else {
                    run_side(ours, j, len, n, &ro);
                    run_side(ref, j, len, n, &rr);
                }
                check(&rr, &ro, j, len, "one thread");
                ratio[r] = rr.secs / ro.secs;
            }
            printf(" %20s", summary(ratio, runs, sbuf, sizeof(sbuf)));
            fflush(stdout);
            free(rr.buf);
            free(ro.buf);
        }
        printf("\n");
        EVP_CIPHER_free(ours);
        EVP_CIPHER_free(ref);
    }

    if (nthr >= 2) {
        printf("\n%d threads side by side: kcapi-aio's scaling / default's, scaling = rate per thread "
               "with %d threads / rate of one thread alone, median (min-max) of %d paired runs\n", nthr, nthr,
               runs);
        print_head(sizes, nsizes);
        for (ji = 0; ji < NJOBS; ji++) {
            const struct job *j = &jobs[ji];
            EVP_CIPHER *ours, *ref;
            char sbuf[64];

            fetch_job(lc_ours, lc_ref, j, &ours, &ref);
            for (si = 0; si < nsizes; si++) {
                size_t len = sizes[si];
                struct result rr = { malloc(len + 16), { 0 }, 0 }, ro = { malloc(len + 16), { 0 }, 0 };
                double ror[MAXRUNS];
                long n;
                int r;

                if (rr.buf == NULL || ro.buf == NULL)
                    die("memory");
                n = records_per_run(ref, j, len, fixed, seconds, &rr);
                for (r = 0; r < runs; r++) {
                    double d1, o1, dt, ot;

                    run_side(ref, j, len, n, &rr);
                    d1 = rr.secs;
                    run_side(ours, j, len, n, &ro);
                    o1 = ro.secs;
                    check(&rr, &ro, j, len, "one thread");
                    if (r % 2 == 0) {
                        dt = run_threads(ref, j, len, n, nthr, &rr, "default, threads");
                        ot = run_threads(ours, j, len, n, nthr, &rr, "threads");
                    } else {
                        ot = run_threads(ours, j, len, n, nthr, &rr, "threads");
                        dt = run_threads(ref, j, len, n, nthr, &rr, "default, threads");
                    }
                    /* scaling = (n / time per thread side by side) / (n / time alone) */
                    ror[r] = (o1 / ot) / (d1 / dt);
                }
                printf(" %20s", summary(ror, runs, sbuf, sizeof(sbuf)));
                fflush(stdout);
                free(rr.buf);
                free(ro.buf);
            }
            printf("\n");
            EVP_CIPHER_free(ours);
            EVP_CIPHER_free(ref);
        }
    }
    OSSL_LIB_CTX_free(lc_ours);
    OSSL_LIB_CTX_free(lc_ref);
    return 0;
}
