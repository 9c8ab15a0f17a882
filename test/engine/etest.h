/* Helpers for the engine's tests: random batches, a libcrypto reference, and
 * skipping (exit 77) where the kernel has no AF_ALG. */
#ifndef KAIO_ETEST_H
#define KAIO_ETEST_H

#include "kcapi-aio/engine.h"
#include "kaio_test.h"
#include "testutil.h"

#include <check.h>
#include <stddef.h>

#define ET_SKIP 77

/* Exits 77 with a printed reason when AF_ALG (or mode's algorithm, mode < 0:
 * any) is missing; with KAIO_REQUIRE_KERNEL=1 set (the kernel lab) that is a
 * failure instead of a skip. */
void et_need_kernel(const char *test);

struct et_rec {
    unsigned char iv[16];
    unsigned char *aad;
    unsigned char tag[16];
    unsigned char *in, *out; /* out == in when in place */
    unsigned char *orig;     /* the input as given (in place overwrites it) */
    unsigned char *ref;      /* expected output */
    unsigned char reftag[16];
    int ref_ok;              /* GCM decrypt: expected to authenticate */
};

struct et_batch {
    enum kaio_mode mode;
    unsigned char key[32];
    size_t keylen;
    size_t n;
    struct kaio_op ops[KAIO_MAX_BATCH];
    struct et_rec r[KAIO_MAX_BATCH];
};

struct et_shape {
    int encrypt;      /* 1, 0, or -1 random per op */
    int inplace;      /* 1, 0, or -1 random per op */
    size_t maxlen;    /* data bytes per op, at most */
    size_t maxaad;    /* GCM */
    int taglen;       /* GCM: fixed, or 0 for random among the kernel's */
    int allow_empty;  /* lengths of 0 may occur */
};

/* Fills b with n random ops on a random key of keylen bytes, computing the
 * expected outputs with libcrypto. */
void et_make(struct et_batch *b, enum kaio_mode mode, size_t keylen, size_t n,
             const struct et_shape *s);
/* Makes the reference for op i again (after a test edits the op). */
void et_reref(struct et_batch *b, size_t i);
/* Checks op i against the reference (status 0 and bytes, or KAIO_EBADMSG
 * when it must not authenticate). */
void et_check_op(const struct et_batch *b, size_t i, const char *what);
void et_check(const struct et_batch *b, const char *what);
/* Reference AES through libcrypto; returns 1 if the GCM tag verified. */
int et_ref(enum kaio_mode mode, const unsigned char *key, size_t keylen, int enc,
           const unsigned char *iv, size_t ivlen, const unsigned char *aad, size_t aadlen,
           const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag,
           size_t taglen);
void et_free(struct et_batch *b);
struct kaio_key *et_key(const struct et_batch *b);
/* Runs a suite (Check, forking per test); returns the exit code. With
 * kernel_test named, first skips (exit 77) where AF_ALG is missing. */
int et_main(Suite *s, const char *kernel_test);
/* AF_ALG sockets the process holds now. */
unsigned et_count_alg_fds(void);

#endif
