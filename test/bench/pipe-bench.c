/*
 * pipe-bench: kcapi-aio's cipher pipelines (OpenSSL 3.5's EVP_CipherPipeline*)
 * against the same records one by one through ordinary EVP calls.
 *
 * Variants, each in its own library context with kcapi-aio loaded under a
 * different KCAPI_AIO_BACKEND (read by the provider when it is loaded):
 *   pipe-aio     one pipeline batch of n records, backend aio;
 *   pipe-sync    the same pipeline, backend sync (the batch, minus AIO);
 *   single-sync  n records through Init(IV)/Update/Final, backend sync: the
 *                baseline every ratio is taken against.
 * Variants alternate batch by batch (rotating the order), so a busy host or
 * a slow VM slows them alike; figures are medians over rounds, the ratio the
 * median of per-round ratios. Only the EVP calls are timed. Every record's
 * output (and GCM tag) is compared with the default provider's.
 *
 * Counters come from the provider param "kcapi-aio-counters" (the engine's
 * process-wide counters, shared by both provider instances), read between
 * batches: kernel operations, syscalls and io_submit calls per batch.
 *
 * Exit: 0 measured and verified, 1 a wrong byte or a failed call, 2 usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#define MAX_PIPES 32 /* EVP_MAX_PIPES */
#define MAX_ROUNDS 1001
#define NVAR 3
#define AADLEN 13
#define TAGLEN 16
#define KEYLEN 16

enum bmode { CBC_ENC, CBC_DEC, CTR, GCM_ENC, NBMODES };
static const char *const bmode_names[NBMODES] = { "cbc-enc", "cbc-dec", "ctr", "gcm" };
static const char *const cipher_names[NBMODES] = { "AES-128-CBC", "AES-128-CBC", "AES-128-CTR", "AES-128-GCM" };

enum { V_PIPE_AIO, V_PIPE_SYNC, V_SINGLE };
static const char *const var_names[NVAR] = { "pipe-aio", "pipe-sync", "single-sync" };

/* The counters we report, by their names in "kcapi-aio-counters". */
enum { C_OPS_AIO, C_OPS_SYNC, C_OPS_SW, C_BATCH_AIO, C_IO_SUBMIT, C_SYSCALLS, C_KOPS, C_FALLBACK, NC };
static const char *const cnt_names[NC] = { "ops_aio", "ops_sync", "ops_software", "batches_aio",
                                           "io_submit_calls", "syscalls", "kernel_ops", "fallback[" };

struct opts {
    int modes[NBMODES];
    size_t sizes[8], nsizes;
    size_t pipes[8], npipes;
    unsigned rounds, reps, round_ms;
};

struct var {
    OSSL_LIB_CTX *lc;
    EVP_CIPHER *c;
    EVP_CIPHER_CTX *ctx;
    int started;
    double rps[MAX_ROUNDS];
    unsigned nr;
    uint64_t batches, records, bad, cnt[NC];
};

struct recs {
    enum bmode m;
    size_t n, size, ivlen;
    unsigned char key[KEYLEN];
    unsigned char *in, *out, *ref, *iv, *aad, *tag, *reftag;
    size_t outl[MAX_PIPES];
};

static OSSL_LIB_CTX *lc_ref, *lc_aio, *lc_sync;
static OSSL_PROVIDER *prov_aio;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
    double s[MAX_ROUNDS];

    if (n == 0)
        return 0;
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Nearest-rank quantile q in [0,1]: the spread of the per-round ratios. */
static double quantile(const double *v, unsigned n, double q)
{
    double s[MAX_ROUNDS];

    if (n == 0)
        return 0;
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_double);
    return s[(unsigned)(q * (n - 1) + 0.5)];
}

static void errors(const char *what)
{
    unsigned long e;
    char buf[256];

    fprintf(stderr, "%s failed", what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, ": %s", buf);
    }
    fprintf(stderr, "\n");
}

/* The engine's counters, as the provider reports them. */
static int counters(uint64_t c[NC])
{
    char buf[4096], *line, *save = NULL;
    OSSL_PARAM p[2] = { OSSL_PARAM_utf8_string("kcapi-aio-counters", buf, sizeof(buf)), OSSL_PARAM_END };
    int i;

    memset(c, 0, NC * sizeof(*c));
    if (!OSSL_PROVIDER_get_params(prov_aio, p))
        return 0;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strrchr(line, '=');

        if (eq == NULL)
            continue;
        for (i = 0; i < NC; i++)
            if (strncmp(line, cnt_names[i], strlen(cnt_names[i])) == 0
                && (i == C_FALLBACK || line + strlen(cnt_names[i]) == eq))
                c[i] += strtoull(eq + 1, NULL, 10);
    }
    return 1;
}

static OSSL_LIB_CTX *load(const char *backend, OSSL_PROVIDER **out)
{
    const char *dir = getenv("KCAPI_AIO_MODULE_DIR");
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *p = NULL;
    char got[32] = "", *gp = got;
    OSSL_PARAM q[2] = { OSSL_PARAM_utf8_ptr("kcapi-aio-backend", &gp, 0), OSSL_PARAM_END };

    if (lc == NULL)
        return NULL;
    /* The provider reads KCAPI_AIO_BACKEND when it is loaded into a context. */
    setenv("KCAPI_AIO_BACKEND", backend, 1);
    OSSL_PROVIDER_set_default_search_path(lc, dir != NULL && *dir ? dir : KCAPI_AIO_BUILD_MODULE_DIR);
    p = OSSL_PROVIDER_load(lc, "kcapi-aio");
    unsetenv("KCAPI_AIO_BACKEND");
    if (p == NULL) {
        errors("loading kcapi-aio");
        OSSL_LIB_CTX_free(lc);
        return NULL;
    }
    gp = NULL;
    if (OSSL_PROVIDER_get_params(p, q) && gp != NULL && strcmp(gp, backend) != 0)
        fprintf(stderr, "warning: provider reports backend %s, %s asked\n", gp, backend);
    if (out)
        *out = p;
    return lc;
}

static void free_recs(struct recs *r)
{
    free(r->in);
    free(r->out);
    free(r->ref);
    free(r->iv);
    free(r->aad);
    free(r->tag);
    free(r->reftag);
}

/* Inputs and the default provider's answers; decryption decrypts its ciphertext. */
static int make_recs(enum bmode m, size_t n, size_t size, struct recs *r)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc_ref, cipher_names[m], NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *plain = malloc(n * size);
    int ok, l;
    size_t i;

    memset(r, 0, sizeof(*r));
    r->m = m;
    r->n = n;
    r->size = size;
    r->ivlen = m == GCM_ENC ? 12 : 16;
    r->in = malloc(n * size);
    r->out = malloc(n * size + 16);
    r->ref = malloc(n * size);
    r->iv = malloc(n * 16);
    r->aad = malloc(n * AADLEN);
    r->tag = calloc(n, TAGLEN);
    r->reftag = calloc(n, TAGLEN);
    ok = c && ctx && plain && r->in && r->out && r->ref && r->iv && r->aad && r->tag && r->reftag;
    if (ok) {
        fill(r->key, KEYLEN, 3);
        fill(r->iv, n * 16, 5 + n);
        fill(r->aad, n * AADLEN, 9);
        fill(plain, n * size, 100 + m * 7 + n);
    }
    for (i = 0; ok && i < n; i++) {
        unsigned char *ct = (m == CBC_DEC ? r->in : r->ref) + i * size;

        ok = EVP_EncryptInit_ex2(ctx, c, r->key, r->iv + i * 16, NULL) && EVP_CIPHER_CTX_set_padding(ctx, 0)
            && (m != GCM_ENC || EVP_EncryptUpdate(ctx, NULL, &l, r->aad + i * AADLEN, AADLEN))
            && EVP_EncryptUpdate(ctx, ct, &l, plain + i * size, (int)size)
            && EVP_EncryptFinal_ex(ctx, ct + l, &l)
            && (m != GCM_ENC || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAGLEN, r->reftag + i * TAGLEN) > 0);
    }
    if (ok)
        memcpy(m == CBC_DEC ? r->ref : r->in, plain, n * size);
    free(plain);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    if (!ok)
        errors("reference");
    return ok;
}

/* One pipeline batch of all n records. */
static int run_pipe(struct var *v, struct recs *r)
{
    unsigned char *out[MAX_PIPES], *tags[MAX_PIPES];
    const unsigned char *in[MAX_PIPES], *ivs[MAX_PIPES], *aad[MAX_PIPES];
    size_t inl[MAX_PIPES], outl[MAX_PIPES], outsize[MAX_PIPES], aadl[MAX_PIPES];
    int enc = r->m != CBC_DEC, ok;
    size_t i;

    for (i = 0; i < r->n; i++) {
        ivs[i] = r->iv + i * 16;
        in[i] = r->in + i * r->size;
        inl[i] = r->size;
        out[i] = r->out + i * r->size;
        outsize[i] = r->size;
        aad[i] = r->aad + i * AADLEN;
        aadl[i] = AADLEN;
        tags[i] = r->tag + i * TAGLEN;
    }
    /* The first batch sets the key; later ones keep it (and its kernel sockets). */
    if (enc)
        ok = EVP_CipherPipelineEncryptInit(v->ctx, v->started ? NULL : v->c, v->started ? NULL : r->key,
                                           KEYLEN, r->n, ivs, r->ivlen);
    else
        ok = EVP_CipherPipelineDecryptInit(v->ctx, v->started ? NULL : v->c, v->started ? NULL : r->key,
                                           KEYLEN, r->n, ivs, r->ivlen);
    if (ok && !v->started) {
        ok = r->m == GCM_ENC || r->m == CTR || EVP_CIPHER_CTX_set_padding(v->ctx, 0);
        v->started = 1;
    }
    if (ok && r->m == GCM_ENC)
        ok = EVP_CipherPipelineUpdate(v->ctx, NULL, outl, NULL, aad, aadl);
    ok = ok && EVP_CipherPipelineUpdate(v->ctx, out, outl, outsize, in, inl);
    for (i = 0; ok && i < r->n; i++) {
        r->outl[i] = outl[i];
        out[i] += outl[i];
        outsize[i] = 16; /* room for a (wrong) final block, which verification catches */
    }
    ok = ok && EVP_CipherPipelineFinal(v->ctx, out, outl, outsize);
    for (i = 0; ok && i < r->n; i++)
        r->outl[i] += outl[i];
    if (ok && r->m == GCM_ENC) {
        void *tp = tags;
        OSSL_PARAM p[2] = { OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_PIPELINE_AEAD_TAG, &tp, TAGLEN),
                            OSSL_PARAM_END };

        ok = EVP_CIPHER_CTX_get_params(v->ctx, p);
    }
    return ok;
}

/* The same records one by one: Init with the record's IV, Update, Final. */
static int run_single(struct var *v, struct recs *r)
{
    int enc = r->m != CBC_DEC, ok = 1, l, l2;
    size_t i;

    for (i = 0; ok && i < r->n; i++) {
        unsigned char *out = r->out + i * r->size;

        if (!v->started) {
            ok = EVP_CipherInit_ex2(v->ctx, v->c, r->key, r->iv + i * 16, enc, NULL)
                && (r->m == GCM_ENC || r->m == CTR || EVP_CIPHER_CTX_set_padding(v->ctx, 0));
            v->started = 1;
        } else {
            ok = EVP_CipherInit_ex2(v->ctx, NULL, NULL, r->iv + i * 16, enc, NULL);
        }
        l = l2 = 0;
        ok = ok && (r->m != GCM_ENC || EVP_CipherUpdate(v->ctx, NULL, &l, r->aad + i * AADLEN, AADLEN))
            && EVP_CipherUpdate(v->ctx, out, &l, r->in + i * r->size, (int)r->size)
            && EVP_CipherFinal_ex(v->ctx, out + l, &l2)
            && (r->m != GCM_ENC || EVP_CIPHER_CTX_ctrl(v->ctx, EVP_CTRL_AEAD_GET_TAG, TAGLEN, r->tag + i * TAGLEN) > 0);
        r->outl[i] = (size_t)l + (size_t)l2;
    }
    return ok;
}

static int verify(struct recs *r, int verbose)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        if (r->outl[i] != r->size || memcmp(r->out + i * r->size, r->ref + i * r->size, r->size) != 0
            || (r->m == GCM_ENC && memcmp(r->tag + i * TAGLEN, r->reftag + i * TAGLEN, TAGLEN) != 0)) {
            if (verbose)
                fprintf(stderr, "record %zu of %zu: %zu bytes out, %s\n", i, r->n, r->outl[i],
                        r->outl[i] == r->size ? "bytes or tag differ from the default provider" : "wrong length");
            return 0;
        }
    return 1;
}

/* One batch of one variant; returns its seconds, or -1 when a call failed. */
static double batch(int vi, struct var *v, struct recs *r)
{
    uint64_t a[NC], b[NC];
    double t0, t;
    int ok, i;

    memset(r->out, 0, r->n * r->size);
    memset(r->tag, 0, r->n * TAGLEN);
    memset(r->outl, 0, sizeof(r->outl));
    counters(a);
    t0 = now();
    ok = vi == V_SINGLE ? run_single(v, r) : run_pipe(v, r);
    t = now() - t0;
    counters(b);
    if (!ok) {
        errors(var_names[vi]);
        v->bad++;
        return -1;
    }
    for (i = 0; i < NC; i++)
        v->cnt[i] += b[i] - a[i];
    if (!verify(r, v->bad == 0))
        v->bad++;
    v->batches++;
    v->records += r->n;
    return t;
}

static double per(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

static int bench(enum bmode m, size_t size, size_t n, const struct opts *o)
{
    struct var *v = calloc(NVAR, sizeof(*v));
    OSSL_LIB_CTX *lcs[NVAR] = { lc_aio, lc_sync, lc_sync };
    unsigned reps = o->reps, round, rep;
    struct recs r;
    int rc = 0, i;

    if (v == NULL || !make_recs(m, n, size, &r)) {
        free(v);
        free_recs(&r);
        return 1;
    }
    for (i = 0; i < NVAR; i++) {
        v[i].lc = lcs[i];
        v[i].c = EVP_CIPHER_fetch(lcs[i], cipher_names[m], "provider=kcapi-aio");
        v[i].ctx = EVP_CIPHER_CTX_new();
        if (v[i].c == NULL || v[i].ctx == NULL) {
            errors("fetch");
            rc = 1;
        }
    }
    /* Warm-up: keys, kernel sockets, AIO context; counted nowhere. */
    for (i = 0; rc == 0 && i < NVAR; i++) {
        struct var w = v[i];

        if (batch(i, &w, &r) < 0 || w.bad) {
            fprintf(stderr, "%s %zu x %zu: %s: first batch failed\n", bmode_names[m], n, size, var_names[i]);
            rc = 1;
        }
        v[i].started = w.started;
    }
    if (rc == 0 && reps == 0) {
        double sum = 0, t;

        for (i = 0; i < NVAR; i++) {
            struct var w = v[i];

            t = batch(i, &w, &r);
            sum += t > 0 ? t : 0;
        }
        reps = sum > 0 ? (unsigned)(o->round_ms / 1000.0 / sum) : 1;
        reps = reps < 1 ? 1 : reps > 100000 ? 100000 : reps;
    }
    for (round = 0; rc == 0 && round < o->rounds; round++) {
        double t[NVAR] = { 0 }, x;

        for (rep = 0; rep < reps && rc == 0; rep++)
            for (i = 0; i < NVAR; i++) {
                int vi = (int)((rep + round + (unsigned)i) % NVAR);

                if ((x = batch(vi, &v[vi], &r)) < 0)
                    rc = 1;
                t[vi] += x;
            }
        for (i = 0; i < NVAR; i++)
            v[i].rps[v[i].nr++] = t[i] > 0 ? (double)reps * n / t[i] : 0;
    }
    for (i = 0; i < NVAR; i++)
        if (v[i].bad) {
            fprintf(stderr, "%s %zu x %zu: %s: %llu wrong batches\n", bmode_names[m], n, size, var_names[i],
                    (unsigned long long)v[i].bad);
            rc = 1;
        }
    for (i = 0; i < NVAR && v[0].nr > 0; i++) {
        const struct var *s = &v[i];
        double ratios[MAX_ROUNDS], med = median(s->rps, s->nr), ratio;
        unsigned q;

        for (q = 0; q < s->nr; q++)
            ratios[q] = v[V_SINGLE].rps[q] > 0 ? s->rps[q] / v[V_SINGLE].rps[q] : 0;
        ratio = median(ratios, s->nr);
        /* Per batch: one pipeline init/update/final, or n single records. */
        printf("%-7s %6zu %3zu  %-11s %10.0f  %5.2f  %4.2f-%4.2f  %9.2f  %9.2f  %8.2f  %7.2f  %6llu  %s\n", bmode_names[m],
               size, n, var_names[i], med, ratio, quantile(ratios, s->nr, 0.25), quantile(ratios, s->nr, 0.75),
               per(s->cnt[C_KOPS], s->batches),
               per(s->cnt[C_SYSCALLS], s->batches), per(s->cnt[C_IO_SUBMIT], s->batches),
               per(s->cnt[C_SYSCALLS], s->records), (unsigned long long)s->cnt[C_OPS_SW],
               rc == 0 ? "ok" : "WRONG");
        printf("BENCH mode=%s size=%zu n=%zu variant=%s rps=%.0f ratio=%.3f ratio_q1=%.3f ratio_q3=%.3f kernel_ops_per_batch=%.3f "
               "syscalls_per_batch=%.3f io_submit_per_batch=%.3f syscalls_per_record=%.3f ops_aio=%llu "
               "ops_sync=%llu batches_aio=%llu ops_software=%llu fallbacks=%llu rounds=%u reps=%u records=%llu "
               "verified=%s\n",
               bmode_names[m], size, n, var_names[i], med, ratio, quantile(ratios, s->nr, 0.25), quantile(ratios, s->nr, 0.75),
               per(s->cnt[C_KOPS], s->batches),
               per(s->cnt[C_SYSCALLS], s->batches), per(s->cnt[C_IO_SUBMIT], s->batches),
               per(s->cnt[C_SYSCALLS], s->records), (unsigned long long)s->cnt[C_OPS_AIO],
               (unsigned long long)s->cnt[C_OPS_SYNC], (unsigned long long)s->cnt[C_BATCH_AIO],
               (unsigned long long)s->cnt[C_OPS_SW], (unsigned long long)s->cnt[C_FALLBACK], s->nr, reps,
               (unsigned long long)s->records, rc == 0 ? "yes" : "no");
    }
    fflush(stdout);
    for (i = 0; i < NVAR; i++) {
        EVP_CIPHER_CTX_free(v[i].ctx);
        EVP_CIPHER_free(v[i].c);
    }
    free(v);
    free_recs(&r);
    return rc;
}

static int parse_list(const char *s, size_t *out, size_t max, size_t lo, size_t hi, size_t *count)
{
    char buf[128], *tok, *save = NULL, *end;
    unsigned long v;

    *count = 0;
    if (strlen(s) >= sizeof(buf))
        return 0;
    strcpy(buf, s);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        errno = 0;
        v = strtoul(tok, &end, 10);
        if (errno || *end || v < lo || v > hi || *count == max)
            return 0;
        out[(*count)++] = v;
    }
    return *count > 0;
}

static int parse_modes(const char *s, int modes[NBMODES])
{
    char buf[128], *tok, *save = NULL;
    int m, any = 0;

    memset(modes, 0, NBMODES * sizeof(int));
    if (strlen(s) >= sizeof(buf))
        return 0;
    strcpy(buf, s);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        for (m = 0; m < NBMODES; m++)
            if (strcmp(tok, bmode_names[m]) == 0 || strcmp(tok, "all") == 0)
                modes[m] = any = 1;
        if (!any)
            return 0;
    }
    return any;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: pipe-bench [--modes cbc-enc,cbc-dec,ctr,gcm|all] [--sizes 256,16384]\n"
               "                  [--pipes 1,2,4,8,16,32] [--rounds R] [--reps B | --round-ms MS]\n"
               "  --reps B      batches per variant per round (default: sized to --round-ms, 300)\n");
}

int main(int argc, char **argv)
{
    struct opts o = { .sizes = { 256, 16384 }, .nsizes = 2, .pipes = { 1, 2, 4, 8, 16, 32 }, .npipes = 6,
                      .rounds = 7, .round_ms = 300 };
    char report[4096] = "";
    OSSL_PARAM rp[2] = { OSSL_PARAM_utf8_string("kcapi-aio-report", report, sizeof(report)), OSSL_PARAM_END };
    unsigned long v;
    size_t si, pi;
    int i, m, rc = 0;

    for (m = 0; m < NBMODES; m++)
        o.modes[m] = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            usage(stderr);
            return 2;
        }
        errno = 0;
        v = strtoul(val, &end, 10);
        if (strcmp(a, "--modes") == 0 && parse_modes(val, o.modes)) {
        } else if (strcmp(a, "--sizes") == 0 && parse_list(val, o.sizes, 8, 16, 1 << 20, &o.nsizes)) {
        } else if (strcmp(a, "--pipes") == 0 && parse_list(val, o.pipes, 8, 1, MAX_PIPES, &o.npipes)) {
        } else if (strcmp(a, "--rounds") == 0 && !errno && !*end && v >= 1 && v <= MAX_ROUNDS) {
            o.rounds = (unsigned)v;
        } else if (strcmp(a, "--reps") == 0 && !errno && !*end && v >= 1 && v <= 1000000) {
            o.reps = (unsigned)v;
        } else if (strcmp(a, "--round-ms") == 0 && !errno && !*end && v >= 1 && v <= 600000) {
            o.round_ms = (unsigned)v;
        } else {
            fprintf(stderr, "pipe-bench: bad argument %s %s\n", a, val);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if ((lc_ref = OSSL_LIB_CTX_new()) == NULL || OSSL_PROVIDER_load(lc_ref, "default") == NULL
        || (lc_aio = load("aio", &prov_aio)) == NULL || (lc_sync = load("sync", NULL)) == NULL) {
        errors("setup");
        return 1;
    }
    if (OSSL_PROVIDER_get_params(prov_aio, rp) && strstr(report, "AF_ALG: no") != NULL)
        printf("pipe-bench: this kernel has no AF_ALG: everything runs in software here; "
               "these are not kernel figures\n");
    printf("pipe-bench: %s; AES-128; medians over paired rounds; per batch = one pipeline "
           "init/update/final of n records, or n single records\n", OpenSSL_version(OPENSSL_VERSION));
    printf("%-7s %6s %3s  %-11s %10s  %5s  %9s  %9s  %9s  %8s  %7s  %6s  %s\n", "mode", "size", "n", "variant",
           "records/s", "ratio", "ratio IQR", "kops/bat", "sysc/bat", "subm/bat", "sysc/rec", "sw", "verified");
    for (m = 0; m < NBMODES; m++)
        for (si = 0; o.modes[m] && si < o.nsizes; si++)
            for (pi = 0; pi < o.npipes; pi++) {
                if (m != GCM_ENC && m != CTR && o.sizes[si] % 16) {
                    printf("%-7s %6zu: skipped, CBC needs whole blocks\n", bmode_names[m], o.sizes[si]);
                    break;
                }
                rc |= bench((enum bmode)m, o.sizes[si], o.pipes[pi], &o);
            }
    printf("(ratio: median over rounds of records/s over single-sync's in the same round, IQR its quartiles; kops, sysc, subm: "
           "kernel operations, engine syscalls, io_submit calls; sw: records run in software)\n");
    OSSL_LIB_CTX_free(lc_aio);
    OSSL_LIB_CTX_free(lc_sync);
    OSSL_LIB_CTX_free(lc_ref);
    return rc;
}
