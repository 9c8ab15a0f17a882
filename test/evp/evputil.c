#include "evputil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/provider.h>

static OSSL_LIB_CTX *override_ctx;

static void free_override(void)
{
    OSSL_LIB_CTX_free(override_ctx);
}

const char *ev_ours_name(void)
{
    const char *o = getenv("TU_OURS_PROVIDER");

    return o != NULL && *o != '\0' ? o : "kcapi-aio";
}

OSSL_LIB_CTX *ev_ours(void)
{
    const char *o = getenv("TU_OURS_PROVIDER");

    if (o == NULL || *o == '\0')
        return tu_ours();
    if (override_ctx == NULL) {
        /* Only for checking the suites themselves: a separate context so the two
         * sides share no state even when both are "default". */
        override_ctx = OSSL_LIB_CTX_new();
        ck_assert_ptr_nonnull(override_ctx);
        ck_assert_msg(OSSL_PROVIDER_load(override_ctx, o) != NULL,
                      "TU_OURS_PROVIDER=%s does not load: %s", o, tu_errors());
        atexit(free_override);
        fprintf(stderr, "note: provider under test is %s (TU_OURS_PROVIDER)\n", o);
    }
    return override_ctx;
}

int ev_strict_errors(void)
{
    /* The default provider fails some calls (a GCM tag mismatch) without an error,
     * so the rule cannot hold while it stands in for the provider under test. */
    const char *o = getenv("TU_OURS_PROVIDER");

    return o == NULL || *o == '\0';
}

OSSL_LIB_CTX *ev_ref(void)
{
    return tu_ref();
}

double ev_scale(void)
{
    const char *s = getenv("TU_SCALE");
    double v = s != NULL && *s != '\0' ? strtod(s, NULL) : 1.0;

    return v > 0 ? v : 1.0;
}

size_t ev_iters(size_t base)
{
    double v = (double)base * ev_scale();

    return v < 1 ? 1 : (size_t)v;
}

uint64_t ev_rng_next(ev_rng *r)
{
    /* splitmix64, like testutil's stream */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

size_t ev_below(ev_rng *r, size_t n)
{
    return n == 0 ? 0 : (size_t)(ev_rng_next(r) % n);
}

void ev_bytes(ev_rng *r, void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        uint64_t v = ev_rng_next(r);
        size_t k = n < 8 ? n : 8;

        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
}

int ev_mode(const char *cipher)
{
    if (strstr(cipher, "CBC") != NULL)
        return EV_CBC;
    if (strstr(cipher, "CTR") != NULL)
        return EV_CTR;
    return EV_GCM;
}

size_t ev_keylen(const char *cipher)
{
    if (strstr(cipher, "128") != NULL)
        return 16;
    if (strstr(cipher, "192") != NULL)
        return 24;
    return 32;
}

void ev_add(ev_trace *t, int ret, int ok, long long n, const void *data, size_t len,
            const char *fmt, ...)
{
    ev_rec *r;
    va_list ap;
    unsigned long e;

    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->r = realloc(t->r, t->cap * sizeof(*t->r));
        ck_assert_ptr_nonnull(t->r);
    }
    r = &t->r[t->n++];
    memset(r, 0, sizeof(*r));
    va_start(ap, fmt);
    vsnprintf(r->label, sizeof(r->label), fmt, ap);
    va_end(ap);
    r->ok = ok != 0;
    r->ret = ok ? ret : 0; /* failure is compared as failure, whatever value */
    r->n = ok ? n : -1;    /* lengths reported by failed calls are not part of the contract */
    e = ERR_peek_error();
    r->err = e == 0 ? 0 : ERR_reason_error_string(e) != NULL ? 2 : 1;
    ERR_clear_error();
    if (ok && data != NULL && len > 0) {
        r->data = malloc(len);
        ck_assert_ptr_nonnull(r->data);
        memcpy(r->data, data, len);
        r->len = len;
    }
}

void ev_trace_reset(ev_trace *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        free(t->r[i].data);
    t->n = 0;
}

void ev_trace_free(ev_trace *t)
{
    ev_trace_reset(t);
    free(t->r);
    t->r = NULL;
    t->cap = 0;
}

static void print_bytes(const char *who, const ev_rec *r)
{
    char hex[2 * 48 + 1];

    ev_hex(hex, sizeof(hex), r->data, r->len < 48 ? r->len : 48);
    fprintf(stderr, "    %-8s ret=%d n=%lld err=%d len=%zu data=%s%s\n", who, r->ret, r->n,
            r->err, r->len, hex, r->len > 48 ? "..." : "");
}

int ev_trace_same(const ev_trace *exp, const ev_trace *got, const char *ctx)
{
    size_t i, n = exp->n < got->n ? exp->n : got->n;
    int shown = 0, bad = 0;

    if (getenv("TU_TRACE") != NULL) { /* show what was compared */
        fprintf(stderr, "TRACE %s\n", ctx);
        for (i = 0; i < exp->n; i++) {
            fprintf(stderr, "  %zu %s\n", i, exp->r[i].label);
            print_bytes("default", &exp->r[i]);
        }
    }
    /* Every differing step is counted (the first five printed): one difference must
     * not hide the next. */
    for (i = 0; i < n; i++) {
        const ev_rec *a = &exp->r[i], *b = &got->r[i];
        int diff = strcmp(a->label, b->label) != 0 || a->ok != b->ok || a->ret != b->ret ||
                   a->n != b->n || a->len != b->len ||
                   (a->len > 0 && memcmp(a->data, b->data, a->len) != 0);
        const char *why = "result differs";

        if (!diff && !b->ok && got->ours && ev_strict_errors() && b->err != 2) {
            diff = 1;
            why = b->err ? "failure left an error without a reason string"
                         : "failure left no error on the queue";
        } else if (!diff && a->err && !a->ok && !b->err) {
            diff = 1;
            why = "reference raised an error, ours did not";
        }
        if (!diff)
            continue;
        bad++;
        if (shown++ < 5) {
            size_t k;

            for (k = 0; k < a->len && k < b->len && a->data[k] == b->data[k]; k++)
                ;
            fprintf(stderr, "MISMATCH %s\n  step %zu '%s': %s", shown == 1 ? ctx : "(same case)", i,
                    a->label, why);
            if (a->len > 0 && b->len > 0 && k < a->len)
                fprintf(stderr, " (first differing byte at %zu)", k);
            fprintf(stderr, "\n");
            print_bytes("default", a);
            print_bytes(ev_ours_name(), b);
        }
        if (strcmp(a->label, b->label) != 0)
            return 0; /* the scripts diverged: later steps are not comparable */
    }
    if (shown > 5)
        fprintf(stderr, "  ... %d differing steps in all\n", bad);
    if (exp->n != got->n) {
        fprintf(stderr, "MISMATCH %s\n  trace lengths %zu vs %zu (next step '%s')\n", ctx, exp->n,
                got->n, exp->n > n ? exp->r[n].label : got->r[n].label);
        return 0;
    }
    return bad == 0;
}

void ev_hex(char *dst, size_t dstsz, const unsigned char *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n && 2 * i + 2 < dstsz; i++) {
        dst[2 * i] = d[p[i] >> 4];
        dst[2 * i + 1] = d[p[i] & 15];
    }
    dst[2 * i] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ev_unhex(unsigned char *dst, size_t cap, const char *hex)
{
    size_t n = 0;

    while (*hex == ' ' || *hex == '\t')
        hex++;
    while (hexval(hex[0]) >= 0) {
        if (hexval(hex[1]) < 0 || n >= cap)
            return (size_t)-1;
        dst[n++] = (unsigned char)(hexval(hex[0]) * 16 + hexval(hex[1]));
        hex += 2;
    }
    while (*hex == ' ' || *hex == '\t' || *hex == '\r' || *hex == '\n')
        hex++;
    return *hex == '\0' ? n : (size_t)-1;
}

void ev_buf_init(ev_buf *b, size_t size, size_t misalign)
{
    b->size = size;
    b->off = EV_GUARD + misalign % 16;
    b->base = malloc(size + b->off + EV_GUARD);
    ck_assert_ptr_nonnull(b->base);
    memset(b->base, 0xA5, size + b->off + EV_GUARD);
    b->p = b->base + b->off;
}

int ev_buf_intact(const ev_buf *b)
{
    size_t i;

    for (i = 0; i < b->off; i++)
        if (b->base[i] != 0xA5)
            return 0;
    for (i = 0; i < EV_GUARD; i++)
        if (b->p[b->size + i] != 0xA5)
            return 0;
    return 1;
}

void ev_buf_free(ev_buf *b)
{
    free(b->base);
    b->base = b->p = NULL;
}

TCase *ev_tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    if (getenv("CK_DEFAULT_TIMEOUT") == NULL)
        tcase_set_timeout(tc, 600);
    return tc;
}

int ev_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed, run;

    tu_seed(); /* print the seed before any test */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    run = srunner_ntests_run(sr);
    srunner_free(sr);
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed == 0 ? 0 : 1;
}

/* Fetched ciphers, kept for the life of the process: fetching per case would
 * measure the method store, not the cipher. */
static struct {
    OSSL_LIB_CTX *lc;
    char name[48];
    EVP_CIPHER *c;
} cache[64];
static size_t ncache;

static void free_cache(void)
{
    size_t i;

    for (i = 0; i < ncache; i++)
        EVP_CIPHER_free(cache[i].c);
    ncache = 0;
}

EVP_CIPHER *ev_cipher(OSSL_LIB_CTX *lc, const char *name)
{
    size_t i;

    for (i = 0; i < ncache; i++)
        if (cache[i].lc == lc && strcmp(cache[i].name, name) == 0)
            return cache[i].c;
    ck_assert_uint_lt(ncache, sizeof(cache) / sizeof(cache[0]));
    cache[ncache].lc = lc;
    snprintf(cache[ncache].name, sizeof(cache[ncache].name), "%s", name);
    cache[ncache].c = tu_fetch(lc, name);
    /* After the fetch, so it runs before the library contexts are freed (atexit is LIFO). */
    if (ncache == 0)
        atexit(free_cache);
    return cache[ncache++].c;
}

uint64_t ev_case_seed(unsigned idx)
{
    const char *s = getenv("TU_CASE");

    if (s != NULL && *s != '\0')
        return strtoull(s, NULL, 0);
    return tu_seed() ^ (0x5851f42d4c957f2dULL * (idx + 1));
}

int ev_single_case(void)
{
    const char *s = getenv("TU_CASE");

    return s != NULL && *s != '\0';
}
