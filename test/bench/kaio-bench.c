/*
 * kaio-bench: the batch engine's AIO path against its sync path.
 *
 *   aio:  repeated batches of N independent records (own IV each), one
 *         kaio_key_run(..., N, KAIO_PATH_AIO) per batch;
 *   sync: the same N records as N calls kaio_key_run(..., 1, KAIO_PATH_SYNC);
 *   aio+coalesce (--coalesce, CBC decryption and CTR): the aio batch with
 *         kaio_set_coalesce(1), one kernel operation for the whole batch.
 *
 * Paths alternate batch by batch (rotating which goes first) so a busy host
 * or a slow VM hits them alike; the table shows medians over rounds of
 * records/s and of the per-round ratio to sync. Only the
 * kaio_key_run calls are timed: every batch's output is then compared with
 * libcrypto's (buffers cleared first, so a stale correct result cannot pass)
 * and folded into a checksum that must agree across paths.
 *
 * Exit: 0 measured and verified, 1 a wrong byte or an op the kernel did not
 * run, 2 usage, 77 no AF_ALG here (1 when KAIO_REQUIRE_KERNEL=1).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "kcapi-aio/engine.h"

#define MAX_PATHS 3
#define MAX_ROUNDS 1001
#define AADLEN 13 /* a TLS 1.2 record header */
#define TAGLEN 16

enum bmode { CBC_ENC, CBC_DEC, CTR, GCM_ENC, GCM_DEC, NBMODES };
static const char *const bmode_names[NBMODES] = { "cbc-enc", "cbc-dec", "ctr", "gcm-enc", "gcm-dec" };

enum bpath { P_AIO, P_SYNC, P_COALESCE };
static const char *const path_names[MAX_PATHS] = { "aio", "sync", "aio+coalesce" };

struct opts {
    int modes[NBMODES];
    size_t size, batch;
    unsigned rounds, reps, round_ms, keybits;
    double seconds;
    int coalesce, quiet;
};

struct recs {
    size_t n, size, ivlen;
    unsigned char key[32];
    unsigned char *in, *out, *ref, *iv, *aad, *tag, *reftag;
    struct kaio_op *ops;
};

struct path_stats {
    double rps[MAX_ROUNDS];
    unsigned nr;
    uint64_t records, batches, calls;
    uint64_t depth; /* max_inflight of one batch (the warm-up's) */
    struct kaio_counters delta;
    uint64_t checksum, bad;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Deterministic data: the run is reproducible and needs no RNG. */
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

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
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

static const EVP_CIPHER *ref_cipher(enum bmode m, unsigned keybits)
{
    static const char *const names[3][3] = {
        { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" },
        { "AES-128-CTR", "AES-192-CTR", "AES-256-CTR" },
        { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" },
    };
    int f = m <= CBC_DEC ? 0 : m == CTR ? 1 : 2;

    return EVP_CIPHER_fetch(NULL, names[f][keybits / 64 - 2], NULL);
}

/*
 * libcrypto's answer for every record: ref (and reftag). Decrypting modes
 * take libcrypto's encryption as their input, so they decrypt real ciphertext
 * and the plaintext is the reference.
 */
static int make_reference(enum bmode m, unsigned keybits, struct recs *r)
{
    EVP_CIPHER *c = (EVP_CIPHER *)ref_cipher(m, keybits);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = c != NULL && ctx != NULL, l;
    size_t i;
    unsigned char *plain = malloc(r->n * r->size + 1);

    ok = ok && plain != NULL;
    if (ok)
        fill(plain, r->n * r->size, 1000 + (unsigned)m);
    for (i = 0; ok && i < r->n; i++) {
        const unsigned char *pt = plain + i * r->size;
        unsigned char *ct = (m == CBC_DEC || m == GCM_DEC ? r->in : r->ref) + i * r->size;
        unsigned char *tag = (m == GCM_DEC ? r->tag : r->reftag) + i * TAGLEN;

        ok = EVP_EncryptInit_ex2(ctx, c, r->key, r->iv + i * 16, NULL)
            && EVP_CIPHER_CTX_set_padding(ctx, 0)
            && (m < GCM_ENC || EVP_EncryptUpdate(ctx, NULL, &l, r->aad + i * AADLEN, AADLEN))
            && EVP_EncryptUpdate(ctx, ct, &l, pt, (int)r->size)
            && EVP_EncryptFinal_ex(ctx, ct + l, &l)
            && (m < GCM_ENC || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAGLEN, tag) > 0);
    }
    if (ok && (m == CBC_DEC || m == GCM_DEC))
        memcpy(r->ref, plain, r->n * r->size);
    else if (ok)
        memcpy(r->in, plain, r->n * r->size);
    free(plain);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return ok;
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
    free(r->ops);
    memset(r, 0, sizeof(*r));
}

static int make_recs(enum bmode m, const struct opts *o, struct recs *r)
{
    size_t i, total = o->batch * o->size;

    memset(r, 0, sizeof(*r));
    r->n = o->batch;
    r->size = o->size;
    r->ivlen = m >= GCM_ENC ? KAIO_GCM_KERNEL_IVLEN : 16;
    r->in = malloc(total + 1);
    r->out = malloc(total + 1);
    r->ref = malloc(total + 1);
    r->iv = malloc(r->n * 16);
    r->aad = malloc(r->n * AADLEN);
    r->tag = calloc(r->n, TAGLEN);
    r->reftag = calloc(r->n, TAGLEN);
    r->ops = calloc(r->n, sizeof(*r->ops));
    if (!r->in || !r->out || !r->ref || !r->iv || !r->aad || !r->tag || !r->reftag || !r->ops)
        return 0;
    fill(r->key, sizeof(r->key), 7);
    fill(r->iv, r->n * 16, 11);
    fill(r->aad, r->n * AADLEN, 13);
    if (!make_reference(m, o->keybits, r))
        return 0;
    for (i = 0; i < r->n; i++) {
        struct kaio_op *op = &r->ops[i];

        op->encrypt = m == CBC_ENC || m == CTR || m == GCM_ENC;
        op->iv = r->iv + i * 16;
        op->ivlen = r->ivlen;
        op->in = r->in + i * r->size;
        op->out = r->out + i * r->size;
        op->len = r->size;
        if (m >= GCM_ENC) {
            op->aad = r->aad + i * AADLEN;
            op->aadlen = AADLEN;
            op->tag = r->tag + i * TAGLEN;
            op->taglen = TAGLEN;
        }
    }
    return 1;
}

/* Clears what the kernel must write, so only a fresh correct result passes. */
static void clear_outputs(enum bmode m, struct recs *r)
{
    memset(r->out, 0, r->n * r->size);
    if (m == GCM_ENC)
        memset(r->tag, 0, r->n * TAGLEN);
}

/* 1 when every record of the batch equals libcrypto's. */
static int check_outputs(enum bmode m, struct recs *r, uint64_t *sum, int verbose)
{
    size_t i;
    int ok = 1;

    for (i = 0; i < r->n; i++) {
        const struct kaio_op *op = &r->ops[i];

        if (op->status != 0) {
            if (verbose)
                fprintf(stderr, "record %zu: status %d (%s, errno %d)\n", i, op->status,
                        kaio_reason_name(op->reason), op->err);
            ok = 0;
            continue;
        }
        if (memcmp(r->out + i * r->size, r->ref + i * r->size, r->size) != 0
            || (m == GCM_ENC && memcmp(r->tag + i * TAGLEN, r->reftag + i * TAGLEN, TAGLEN) != 0)) {
            if (verbose)
                fprintf(stderr, "record %zu: output differs from libcrypto\n", i);
            ok = 0;
        }
    }
    *sum = fnv(*sum, r->out, r->n * r->size);
    if (m == GCM_ENC)
        *sum = fnv(*sum, r->tag, r->n * TAGLEN);
    return ok;
}

static void add_delta(struct kaio_counters *acc, const struct kaio_counters *a,
                      const struct kaio_counters *b)
{
    int i;

    for (i = 0; i < KAIO_NCOUNTERS; i++)
        acc->c[i] += b->c[i] - a->c[i];
    for (i = 0; i < KAIO_NREASONS; i++)
        acc->fallback[i] += b->fallback[i] - a->fallback[i];
}

/* One path, reps batches; returns the seconds spent inside kaio_key_run. */
static double run_path(enum bmode m, enum bpath p, struct kaio_key *k, struct recs *r,
                       unsigned reps, struct path_stats *st)
{
    struct kaio_counters a, b;
    double t = 0, t0;
    unsigned rep;
    size_t i;

    kaio_set_coalesce(p == P_COALESCE);
    for (rep = 0; rep < reps; rep++) {
        clear_outputs(m, r);
        kaio_counters_get(&a);
        t0 = now();
        if (p == P_SYNC) {
            for (i = 0; i < r->n; i++)
                kaio_key_run(k, &r->ops[i], 1, KAIO_PATH_SYNC);
            st->calls += r->n;
        } else {
            kaio_key_run(k, r->ops, r->n, KAIO_PATH_AIO);
            st->calls++;
        }
        t += now() - t0;
        kaio_counters_get(&b);
        add_delta(&st->delta, &a, &b);
        if (!check_outputs(m, r, &st->checksum, st->bad == 0))
            st->bad++;
        st->records += r->n;
        st->batches++;
    }
    kaio_set_coalesce(0);
    return t;
}

static enum kaio_mode engine_mode(enum bmode m)
{
    return m <= CBC_DEC ? KAIO_CBC : m == CTR ? KAIO_CTR : KAIO_GCM;
}

static double per(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

/* Returns 0 ok, 1 failure, 77 mode unavailable. */
static int bench_mode(enum bmode m, const struct opts *o)
{
    const struct kaio_caps *caps = kaio_probe();
    struct path_stats *st;
    enum bpath paths[MAX_PATHS];
    unsigned np = 0, reps = o->reps, round, i, j;
    enum kaio_reason why = KAIO_R_NONE;
    struct kaio_key *k;
    struct recs r;
    int err = 0, rc = 0;
    double deadline;

    if (!caps->mode[engine_mode(m)].available) {
        printf("%-8s skipped: kernel lacks %s (%s)\n", bmode_names[m], caps->mode[engine_mode(m)].alg,
               kaio_reason_name(caps->mode[engine_mode(m)].reason));
        return 77;
    }
    if ((m == CBC_ENC || m == CBC_DEC) && o->size % 16) {
        printf("%-8s skipped: CBC needs a multiple of 16 bytes\n", bmode_names[m]);
        return 77;
    }
    paths[np++] = P_AIO;
    paths[np++] = P_SYNC;
    if (o->coalesce && (m == CBC_DEC || m == CTR))
        paths[np++] = P_COALESCE;
    if (!make_recs(m, o, &r)) {
        fprintf(stderr, "%s: cannot set up the records (libcrypto or memory)\n", bmode_names[m]);
        free_recs(&r);
        return 1;
    }
    k = kaio_key_new(engine_mode(m), r.key, o->keybits / 8, &why, &err);
    if (k == NULL) {
        fprintf(stderr, "%s: kaio_key_new failed: %s (errno %d)\n", bmode_names[m], kaio_reason_name(why), err);
        free_recs(&r);
        return 1;
    }
    st = calloc(MAX_PATHS, sizeof(*st));
    if (st == NULL) {
        kaio_key_free(k);
        free_recs(&r);
        return 1;
    }
    /* Warm-up: op sockets accepted, AIO context made, outside any figure. */
    {
        struct path_stats w;

        for (i = 0; i < np; i++) {
            struct kaio_counters c;

            memset(&w, 0, sizeof(w));
            kaio_counters_reset(); /* max_inflight is a maximum: this batch's alone */
            run_path(m, paths[i], k, &r, 1, &w);
            kaio_counters_get(&c);
            st[i].depth = c.max_inflight;
            if (w.bad) {
                fprintf(stderr, "%s: %s: first batch wrong (see above)\n", bmode_names[m], path_names[paths[i]]);
                rc = 1;
            }
        }
    }
    if (rc == 0 && reps == 0) {
        /* Size a round (every path's batches) to about round_ms. */
        double slow = 0, t;
        struct path_stats w;

        for (i = 0; i < np; i++) {
            memset(&w, 0, sizeof(w));
            t = run_path(m, paths[i], k, &r, 2, &w) / 2;
            slow += t;
        }
        reps = slow > 0 ? (unsigned)(o->round_ms / 1000.0 / slow) : 1;
        reps = reps < 1 ? 1 : reps > 100000 ? 100000 : reps;
    }
    deadline = now() + o->seconds;
    for (round = 0; rc == 0 && round < o->rounds && round < MAX_ROUNDS; round++) {
        double t[MAX_PATHS] = { 0 };
        unsigned rep;

        if (o->seconds > 0 && round >= 3 && now() > deadline)
            break;
        /* Batch by batch, rotating the order: a busy host slows all paths alike. */
        for (rep = 0; rep < reps; rep++)
            for (j = 0; j < np; j++) {
                unsigned x = (rep + round + j) % np;

                t[x] += run_path(m, paths[x], k, &r, 1, &st[x]);
            }
        for (j = 0; j < np; j++)
            st[j].rps[st[j].nr++] = t[j] > 0 ? (double)reps * r.n / t[j] : 0;
    }
    for (i = 0; i < np; i++) {
        if (st[i].bad) {
            fprintf(stderr, "%s: %s: %llu of %llu batches wrong\n", bmode_names[m], path_names[paths[i]],
                    (unsigned long long)st[i].bad, (unsigned long long)st[i].batches);
            rc = 1;
        }
        if (st[i].checksum != st[0].checksum && st[i].batches == st[0].batches) {
            fprintf(stderr, "%s: checksums of %s and %s differ\n", bmode_names[m], path_names[paths[0]],
                    path_names[paths[i]]);
            rc = 1;
        }
    }
    {
        for (i = 0; i < np; i++) {
            const struct path_stats *s = &st[i];
            const uint64_t *c = s->delta.c;
            double med = median(s->rps, s->nr), ratios[MAX_ROUNDS], ratio;
            uint64_t fb = 0;
            unsigned q;
            int x;

            /* Paired: each round's ratio to the sync path of the same round. */
            for (q = 0; q < s->nr; q++)
                ratios[q] = st[1].rps[q] > 0 ? s->rps[q] / st[1].rps[q] : 0;
            ratio = median(ratios, s->nr);

            for (x = 1; x < KAIO_NREASONS; x++)
                fb += s->delta.fallback[x];
            printf("%-8s %6zu %3zu  %-13s %11.0f  %5.2f  %4.2f-%4.2f  %8.2f  %8.2f  %8.2f  %5llu  %6llu  %s\n", bmode_names[m],
                   o->size, o->batch, path_names[paths[i]], med, ratio, quantile(ratios, s->nr, 0.25),
                   quantile(ratios, s->nr, 0.75),
                   per(c[KAIO_C_SYSCALLS], s->records), per(c[KAIO_C_IO_SUBMIT], s->batches),
                   per(c[KAIO_C_KERNEL_OPS], s->records), (unsigned long long)s->depth, (unsigned long long)fb,
                   rc == 0 ? "ok" : "WRONG");
            /* One machine-readable line per path for scripts. */
            printf("BENCH mode=%s size=%zu batch=%zu path=%s rps=%.0f ratio=%.3f ratio_q1=%.3f ratio_q3=%.3f syscalls_per_record=%.3f "
                   "io_submit_per_batch=%.3f kernel_ops_per_record=%.3f max_inflight=%llu ops_aio=%llu ops_sync=%llu "
                   "fallbacks=%llu rounds=%u reps=%u records=%llu checksum=%016llx verified=%s\n",
                   bmode_names[m], o->size, o->batch, path_names[paths[i]], med, ratio, quantile(ratios, s->nr, 0.25),
                   quantile(ratios, s->nr, 0.75),
                   per(c[KAIO_C_SYSCALLS], s->records), per(c[KAIO_C_IO_SUBMIT], s->batches),
                   per(c[KAIO_C_KERNEL_OPS], s->records), (unsigned long long)s->depth,
                   (unsigned long long)c[KAIO_C_OPS_AIO],
                   (unsigned long long)c[KAIO_C_OPS_SYNC], (unsigned long long)fb, s->nr, reps,
                   (unsigned long long)s->records, (unsigned long long)s->checksum, rc == 0 ? "yes" : "no");
        }
    }
    free(st);
    kaio_key_free(k);
    free_recs(&r);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kaio-bench [--mode M[,M...]|all] [--size BYTES] [--batch N] [--rounds R]\n"
            "                  [--reps B | --round-ms MS] [--seconds S] [--key-bits 128|192|256] [--coalesce]\n"
            "  modes: cbc-enc cbc-dec ctr gcm-enc gcm-dec (default cbc-enc)\n"
            "  --batch N      records per aio batch, 1..%d (default 16)\n"
            "  --size BYTES   record size (default 256)\n"
            "  --rounds R     paired rounds (default 7); --seconds S stops earlier (after 3 rounds)\n"
            "  --reps B       batches per path per round (default: sized so a round takes --round-ms, default 200)\n"
            "  --coalesce     also time CBC decryption and CTR as one kernel operation per batch\n",
            KAIO_MAX_BATCH);
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
        if (strcmp(tok, "all") == 0) {
            for (m = 0; m < NBMODES; m++)
                modes[m] = any = 1;
            continue;
        }
        for (m = 0; m < NBMODES && strcmp(tok, bmode_names[m]) != 0; m++)
            ;
        if (m == NBMODES)
            return 0;
        modes[m] = any = 1;
    }
    return any;
}

static int parse_num(const char *s, unsigned long lo, unsigned long hi, unsigned long *v)
{
    char *end;

    errno = 0;
    *v = strtoul(s, &end, 10);
    return errno == 0 && *s && !*end && *v >= lo && *v <= hi;
}

int main(int argc, char **argv)
{
    struct opts o = { .size = 256, .batch = 16, .rounds = 7, .round_ms = 200, .keybits = 128 };
    const struct kaio_caps *caps;
    const char *req = getenv("KAIO_REQUIRE_KERNEL");
    unsigned long v;
    int i, m, rc = 0, ran = 0;

    o.modes[CBC_ENC] = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--coalesce") == 0) {
            o.coalesce = 1;
            continue;
        } else if (val == NULL) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--mode") == 0 && parse_modes(val, o.modes)) {
        } else if (strcmp(a, "--size") == 0 && parse_num(val, 1, 1 << 20, &v)) {
            o.size = v;
        } else if (strcmp(a, "--batch") == 0 && parse_num(val, 1, KAIO_MAX_BATCH, &v)) {
            o.batch = v;
        } else if (strcmp(a, "--rounds") == 0 && parse_num(val, 1, MAX_ROUNDS, &v)) {
            o.rounds = (unsigned)v;
        } else if (strcmp(a, "--reps") == 0 && parse_num(val, 1, 10000000, &v)) {
            o.reps = (unsigned)v;
        } else if (strcmp(a, "--round-ms") == 0 && parse_num(val, 1, 600000, &v)) {
            o.round_ms = (unsigned)v;
        } else if (strcmp(a, "--seconds") == 0 && parse_num(val, 1, 86400, &v)) {
            o.seconds = (double)v;
        } else if (strcmp(a, "--key-bits") == 0 && parse_num(val, 128, 256, &v) && v % 64 == 0) {
            o.keybits = (unsigned)v;
        } else {
            fprintf(stderr, "kaio-bench: bad argument %s %s\n", a, val);
            usage(stderr);
            return 2;
        }
        i++;
    }
    caps = kaio_probe();
    if (!caps->af_alg) {
        printf("kaio-bench: this kernel has no AF_ALG (%s): nothing to measure\n", strerror(caps->af_alg_err));
        return req != NULL && strcmp(req, "1") == 0 ? 1 : 77;
    }
    printf("kaio-bench: AES-%u, %zu-byte records, batches of %zu; AIO %s; medians over paired rounds\n",
           o.keybits, o.size, o.batch, caps->aio ? "available" : "UNAVAILABLE (aio path falls back to sync)");
    printf("%-8s %6s %3s  %-13s %11s  %5s  %9s  %8s  %8s  %8s  %5s  %6s  %s\n", "mode", "size", "N", "path",
           "records/s", "ratio", "ratio IQR", "sysc/rec", "submit/b", "kops/rec", "depth", "fallbk", "verified");
    for (m = 0; m < NBMODES; m++) {
        int r;

        if (!o.modes[m])
            continue;
        r = bench_mode((enum bmode)m, &o);
        if (r == 1)
            rc = 1;
        else if (r == 0)
            ran++;
    }
    printf("(ratio: median over rounds of records/s over the sync path's in the same round, IQR its quartiles; sysc/rec: engine syscalls per record; submit/b: io_submit "
           "calls per batch; kops/rec: kernel cipher operations per record; depth: most kernel operations in flight at once)\n");
    if (rc == 0 && ran == 0)
        return 77;
    return rc;
}
