/*
 * ASYNC jobs benchmark (not a test): c connections, each one AES-128-CBC
 * encryption context, each moving --records records of --size bytes one
 * EVP_CipherUpdate at a time (a TLS record's shape), served by one thread in
 * three ways:
 *   off        no jobs: the records of the c contexts in turn, each call
 *              blocking until the kernel is done (a server without
 *              SSL_MODE_ASYNC);
 *   unbatched  one ASYNC job per context, run by a poll loop; a job pauses
 *              while its record is in the kernel; each record has its own
 *              io_submit (async_batch = 0, the default);
 *   batched    the same with async_batch = 1: the jobs' reads
 *              wait in the thread's queue and go in one io_submit per round.
 * Per variant it prints, per record: io_submit calls, syscalls, pauses, and
 * max_inflight (the most reads in the kernel at once); then records/s ratios
 * batched/unbatched and batched/off, the median (min-max) of paired runs.
 * Each run is a forked child that loads the provider afresh (the setting is
 * read at load; the counters start from zero), with the variants of a pair
 * in rotating order. Every output byte is compared with OpenSSL's default
 * provider; a difference prints WRONG and exits 1.
 *
 *   async-bench [--jobs 1,4,16] [--records N] [--size BYTES] [--runs R]
 *
 * Meant for the kernel lab's device scenario, where a device serves cbc(aes)
 * (elsewhere the records may run in software or on a CPU driver, and the
 * figures say so: io_submit 0, or no pause). Wall-clock time: under TCG only
 * the ratios and the counts mean anything.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "kcapi-aio/names.h"

#ifndef KCAPI_AIO_BUILD_MODULE_DIR
#define KCAPI_AIO_BUILD_MODULE_DIR "."
#endif

#define MAXJOBS 64
#define MAXRUNS 101
#define MAXC 8

enum variant { V_OFF, V_UNBATCHED, V_BATCHED, NV };
static const char *const vname[NV] = { "off", "unbatched", "batched" };

/* What a run's child reports through its pipe. */
struct figures {
    int ok;               /* every byte as the default provider's */
    double secs;
    unsigned long long io_submit, syscalls, pauses, inflight, ops_aio, ops_sync, ops_sw;
};

static size_t reclen = 4096, nrec = 16;

static double wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "async-bench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static unsigned long long counter(OSSL_PROVIDER *p, const char *name)
{
    static char text[8192];
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(KCAPI_AIO_PARAM_COUNTERS, text, sizeof(text)),
        OSSL_PARAM_END
    };
    size_t n = strlen(name);
    const char *line;

    text[0] = '\0';
    if (!OSSL_PROVIDER_get_params(p, params))
        die("counters");
    for (line = text; line != NULL && *line != '\0'; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, n) == 0 && line[n] == '=')
            return strtoull(line + n + 1, NULL, 10);
    return 0;
}

struct conn {
    EVP_CIPHER_CTX *ctx;
    unsigned char key[16], iv[16];
    unsigned char *in, *out;
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wc;
    int done, ok;
};

static int job_fn(void *arg)
{
    struct conn *c = *(struct conn **)arg;
    size_t r;
    int l;

    c->ok = 1;
    for (r = 0; r < nrec; r++)
        if (!EVP_CipherUpdate(c->ctx, c->out + r * reclen, &l, c->in + r * reclen, (int)reclen)
            || l != (int)reclen)
            c->ok = 0;
    return c->ok;
}

static int step(struct conn *c)
{
    struct conn *arg = c;
    int ret = 0;

    switch (ASYNC_start_job(&c->job, c->wc, &ret, job_fn, &arg, sizeof(arg))) {
    case ASYNC_FINISH:
        return 1;
    case ASYNC_PAUSE:
        return 0;
    default:
        die("ASYNC_start_job");
    }
    return 0;
}

/* The loop of an async server: wait until a paused job's fd is readable, then
 * give every paused job its turn. */
static void run_jobs(struct conn *cs, size_t n)
{
    struct pollfd p[MAXJOBS];
    size_t i, left = 0, m;

    for (i = 0; i < n; i++)
        left += !(cs[i].done = step(&cs[i]));
    while (left > 0) {
        for (m = 0, i = 0; i < n; i++) {
            OSSL_ASYNC_FD fd;
            size_t k = 1;

            if (cs[i].done)
                continue;
            if (!ASYNC_WAIT_CTX_get_all_fds(cs[i].wc, &fd, &k) || k != 1)
                die("a paused job without its fd");
            p[m].fd = fd;
            p[m++].events = POLLIN;
        }
        if (poll(p, m, -1) <= 0)
            die("poll");
        for (i = 0; i < n; i++)
            if (!cs[i].done && (cs[i].done = step(&cs[i])))
                left--;
    }
}

/* One run in a fresh child: c connections, one variant. */
static void child(size_t c, enum variant v, int out_fd)
{
    const char *dir = getenv("KCAPI_AIO_MODULE_DIR");
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new(), *ref = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *prov;
    EVP_CIPHER *ciph, *rciph;
    static struct conn cs[MAXJOBS];
    struct figures f;
    unsigned char warm[16], wout[16];
    unsigned char *want = malloc(nrec * reclen);
    size_t i, r;
    double t0;
    int l;

    setenv(KCAPI_AIO_ENV_ASYNC_BATCH, v == V_BATCHED ? "1" : "0", 1);
    if (lc == NULL || ref == NULL || want == NULL)
        die("memory");
    OSSL_PROVIDER_set_default_search_path(lc, dir != NULL && *dir ? dir : KCAPI_AIO_BUILD_MODULE_DIR);
    if ((prov = OSSL_PROVIDER_load(lc, KCAPI_AIO_NAME)) == NULL || OSSL_PROVIDER_load(lc, "default") == NULL
        || OSSL_PROVIDER_load(ref, "default") == NULL)
        die("loading the providers");
    if ((ciph = EVP_CIPHER_fetch(lc, "AES-128-CBC", KCAPI_AIO_PROPS)) == NULL
        || (rciph = EVP_CIPHER_fetch(ref, "AES-128-CBC", NULL)) == NULL)
        die("fetch");
    memset(&f, 0, sizeof(f));
    for (i = 0; i < c; i++) {
        struct conn *k = &cs[i];

        memset(k, 0, sizeof(*k));
        for (r = 0; r < 16; r++) {
            k->key[r] = (unsigned char)(i * 37 + r * 11 + 1);
            k->iv[r] = (unsigned char)(i * 13 + r * 7 + 5);
        }
        k->in = malloc(nrec * reclen);
        k->out = malloc(nrec * reclen);
        if (k->in == NULL || k->out == NULL || (k->ctx = EVP_CIPHER_CTX_new()) == NULL
            || (k->wc = ASYNC_WAIT_CTX_new()) == NULL)
            die("memory");
        for (r = 0; r < nrec * reclen; r++)
            k->in[r] = (unsigned char)(r * 131 + i * 17 + 3);
        if (!EVP_CipherInit_ex2(k->ctx, ciph, k->key, k->iv, 1, NULL) || !EVP_CIPHER_CTX_set_padding(k->ctx, 0))
            die("init");
        /* Warm-up outside the timing: the probe, each key's first socket.
         * Then the same key and IV again for the timed records. */
        memset(warm, 0, sizeof(warm));
        if (!EVP_CipherUpdate(k->ctx, wout, &l, warm, sizeof(warm))
            || !EVP_CipherInit_ex2(k->ctx, NULL, NULL, k->iv, 1, NULL))
            die("warm-up");
    }
    f.io_submit = counter(prov, "io_submit_calls");
    f.syscalls = counter(prov, "syscalls");
    f.pauses = counter(prov, "async_pauses");
    f.ops_aio = counter(prov, "ops_aio");
    f.ops_sync = counter(prov, "ops_sync");
    f.ops_sw = counter(prov, "ops_software");
    t0 = wall();
    if (v == V_OFF) {
        for (r = 0; r < nrec; r++)
            for (i = 0; i < c; i++)
                if (!EVP_CipherUpdate(cs[i].ctx, cs[i].out + r * reclen, &l, cs[i].in + r * reclen, (int)reclen)
                    || l != (int)reclen)
                    die("update");
    } else {
        run_jobs(cs, c);
    }
    f.secs = wall() - t0;
    f.io_submit = counter(prov, "io_submit_calls") - f.io_submit;
    f.syscalls = counter(prov, "syscalls") - f.syscalls;
    f.pauses = counter(prov, "async_pauses") - f.pauses;
    f.ops_aio = counter(prov, "ops_aio") - f.ops_aio;
    f.ops_sync = counter(prov, "ops_sync") - f.ops_sync;
    f.ops_sw = counter(prov, "ops_software") - f.ops_sw;
    f.inflight = counter(prov, "max_inflight");
    f.ok = 1;
    for (i = 0; i < c; i++) {
        EVP_CIPHER_CTX *rc = EVP_CIPHER_CTX_new();

        if (v != V_OFF && !cs[i].ok)
            f.ok = 0;
        if (rc == NULL || !EVP_CipherInit_ex2(rc, rciph, cs[i].key, cs[i].iv, 1, NULL)
            || !EVP_CIPHER_CTX_set_padding(rc, 0)
            || !EVP_CipherUpdate(rc, want, &l, cs[i].in, (int)(nrec * reclen)))
            die("reference");
        if (memcmp(want, cs[i].out, nrec * reclen) != 0)
            f.ok = 0;
        EVP_CIPHER_CTX_free(rc);
    }
    if (write(out_fd, &f, sizeof(f)) != (ssize_t)sizeof(f))
        die("pipe");
    exit(0);
}

static struct figures run(size_t c, enum variant v)
{
    struct figures f;
    int p[2], st;
    pid_t pid;

    fflush(stdout);
    if (pipe(p) != 0 || (pid = fork()) < 0)
        die("fork");
    if (pid == 0) {
        close(p[0]);
        child(c, v, p[1]);
    }
    close(p[1]);
    if (read(p[0], &f, sizeof(f)) != (ssize_t)sizeof(f))
        die("a run failed");
    close(p[0]);
    waitpid(pid, &st, 0);
    if (!f.ok) {
        printf("WRONG: %s with %zu jobs: output differs from the default provider's\n", vname[v], c);
        exit(1);
    }
    return f;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int cmp_u(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

    return x < y ? -1 : x > y;
}

/* "median (min-max)" of n ratios. */
static void print_spread(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    printf("%.2f (%.2f-%.2f)", v[n / 2], v[0], v[n - 1]);
}

/* A per-record figure: "median" when every run agreed, else "median (min-max)". */
static void print_count(unsigned long long *v, int n, double per)
{
    char cell[64];

    qsort(v, (size_t)n, sizeof(*v), cmp_u);
    if (v[0] == v[n - 1])
        snprintf(cell, sizeof(cell), "%.3f", (double)v[n / 2] / per);
    else
        snprintf(cell, sizeof(cell), "%.3f (%.3f-%.3f)", (double)v[n / 2] / per, (double)v[0] / per,
                 (double)v[n - 1] / per);
    printf(" %-24s", cell);
}

int main(int argc, char **argv)
{
    size_t cs[MAXC] = { 1, 4, 16 }, nc = 3, x;
    int runs = 7, a;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--jobs") == 0 && a + 1 < argc) {
            char *s = argv[++a], *e;

            for (nc = 0; *s && nc < MAXC; s = *e ? e + 1 : e) {
                cs[nc] = strtoul(s, &e, 10);
                if (e == s || cs[nc] < 1 || cs[nc] > MAXJOBS)
                    die("--jobs: numbers from 1 to 64, comma-separated");
                nc++;
            }
        } else if (strcmp(argv[a], "--records") == 0 && a + 1 < argc) {
            nrec = strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--size") == 0 && a + 1 < argc) {
            reclen = strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--runs") == 0 && a + 1 < argc) {
            runs = atoi(argv[++a]);
        } else {
            fprintf(stderr, "usage: async-bench [--jobs 1,4,16] [--records N] [--size BYTES] [--runs R]\n");
            return 2;
        }
    }
    if (nrec < 1 || reclen < 16 || reclen % 16 || reclen > (1u << 20) || runs < 1 || runs > MAXRUNS)
        die("bad --records, --size (a multiple of 16) or --runs");
    printf("AES-128-CBC encryption, %zu records of %zu bytes per job, %d paired runs; per record: "
           "median (min-max) over the runs\n", nrec, reclen, runs);
    for (x = 0; x < nc; x++) {
        static struct figures f[MAXRUNS][NV];
        double rb[MAXRUNS], ro[MAXRUNS];
        unsigned long long v[MAXRUNS];
        char cell[64];
        size_t c = cs[x];
        double recs = (double)(c * nrec);
        int r, k;

        for (r = 0; r < runs; r++)
            for (k = 0; k < NV; k++) {
                enum variant w = (enum variant)((k + r) % NV); /* rotating order */

                f[r][w] = run(c, w);
            }
        printf("\nc = %zu jobs (%zu records per run)\n", c, c * nrec);
        printf("  %-10s %-24s %-24s %-24s %-9s %s\n", "variant", "io_submit/record", "syscalls/record",
               "pauses/record", "inflight", "path (ops aio/sync/software per run)");
        for (k = 0; k < NV; k++) {
            printf("  %-10s", vname[k]);
            for (r = 0; r < runs; r++)
                v[r] = f[r][k].io_submit;
            print_count(v, runs, recs);
            for (r = 0; r < runs; r++)
                v[r] = f[r][k].syscalls;
            print_count(v, runs, recs);
            for (r = 0; r < runs; r++)
                v[r] = f[r][k].pauses;
            print_count(v, runs, recs);
            for (r = 0; r < runs; r++)
                v[r] = f[r][k].inflight;
            qsort(v, (size_t)runs, sizeof(*v), cmp_u);
            snprintf(cell, sizeof(cell), "%llu-%llu", v[0], v[runs - 1]);
            printf(" %-9s", cell);
            printf(" %llu/%llu/%llu\n", f[0][k].ops_aio, f[0][k].ops_sync, f[0][k].ops_sw);
        }
        for (r = 0; r < runs; r++) {
            rb[r] = f[r][V_UNBATCHED].secs / f[r][V_BATCHED].secs;
            ro[r] = f[r][V_OFF].secs / f[r][V_BATCHED].secs;
        }
        printf("  records/s batched / unbatched: ");
        print_spread(rb, runs);
        printf("; batched / off: ");
        print_spread(ro, runs);
        printf("\n");
    }
    printf("\nevery output byte checked against the default provider\n");
    return 0;
}
