/* Helpers shared by the EVP-level differential suites in test/evp/. */
#ifndef KCAPI_AIO_EVPUTIL_H
#define KCAPI_AIO_EVPUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <check.h>

#include "testutil.h"

/* The library context under test. tu_ours() unless $TU_OURS_PROVIDER names another
 * provider (e.g. "default"): then a private context with only that one, so the
 * suites can be checked against a known-good implementation. */
OSSL_LIB_CTX *ev_ours(void);
/* 1 unless TU_OURS_PROVIDER is set: then "every failure leaves an error" is not
 * enforced, as the default provider itself breaks it. */
int ev_strict_errors(void);
/* The reference: OpenSSL's default provider (tu_ref()). */
OSSL_LIB_CTX *ev_ref(void);
/* Name printed in messages for the provider under test. */
const char *ev_ours_name(void);

/* $TU_SCALE (default 1): iteration count = max(1, base * scale). */
double ev_scale(void);
size_t ev_iters(size_t base);

/* Per-case reproducible randomness: a case seed drawn from the TU_SEED stream,
 * printed with every mismatch so a single case can be rerun. */
typedef struct {
    uint64_t s;
} ev_rng;
uint64_t ev_rng_next(ev_rng *r);
size_t ev_below(ev_rng *r, size_t n); /* uniform in [0, n) */
void ev_bytes(ev_rng *r, void *buf, size_t n);

enum { EV_CBC = 1, EV_CTR = 2, EV_GCM = 3 };
int ev_mode(const char *cipher);     /* EV_CBC / EV_CTR / EV_GCM */
size_t ev_keylen(const char *cipher); /* 16, 24 or 32 */

/* A trace: every call's return value, returned length, output bytes and whether it
 * left an error. The same script run on both providers must give equal traces. */
typedef struct {
    char label[96];
    int ret, ok;
    long long n;
    unsigned char *data;
    size_t len;
    int err; /* after the call: 0 no error, 1 error, 2 error with a reason string */
} ev_rec;

typedef struct {
    ev_rec *r;
    size_t n, cap;
    int ours; /* failures in the "ours" trace must leave an error */
} ev_trace;

/* Append a record; consumes (clears) the error queue. 'ok' tells whether ret is a
 * success (callers pass ret > 0 for most EVP calls). */
void ev_add(ev_trace *t, int ret, int ok, long long n, const void *data, size_t len,
            const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void ev_trace_free(ev_trace *t);
void ev_trace_reset(ev_trace *t);
/* Compare; prints differences (up to 5, with 'ctx' text) to stderr. 1 if the traces
 * agree. Also fails when a failing call in the ours-trace left no error. */
int ev_trace_same(const ev_trace *exp, const ev_trace *got, const char *ctx);

/* Hex helpers for messages and vector files. */
void ev_hex(char *dst, size_t dstsz, const unsigned char *p, size_t n);
/* Decode hex; returns bytes written or (size_t)-1 on bad input. */
size_t ev_unhex(unsigned char *dst, size_t cap, const char *hex);

/* Guarded output buffers: canary bytes before and after, and an odd offset. */
typedef struct {
    unsigned char *base;
    unsigned char *p; /* usable area */
    size_t size, off;
} ev_buf;
#define EV_GUARD 64
void ev_buf_init(ev_buf *b, size_t size, size_t misalign);
int ev_buf_intact(const ev_buf *b); /* canaries untouched */
void ev_buf_free(ev_buf *b);

/* Run a Check suite with a generous timeout (the default is 4 s); returns the exit code. */
int ev_run(Suite *s);
/* A test case with the suite timeout set. */
TCase *ev_tcase(const char *name);



/* A cached fetch (freed at exit). */
EVP_CIPHER *ev_cipher(OSSL_LIB_CTX *lc, const char *name);
/* Seed of a test's case stream: from TU_SEED and the test index, or $TU_CASE (then
 * ev_single_case() is 1 and a suite runs only that one case). */
uint64_t ev_case_seed(unsigned idx);
int ev_single_case(void);
#endif
