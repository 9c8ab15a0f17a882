/*
 * kcapi-aio batch engine: runs arrays of independent AES operations in the
 * Linux kernel through AF_ALG, as one AIO submission or synchronously.
 *
 * OpenSSL-free on purpose: the provider (provider/) is the only OpenSSL glue,
 * and aio/ is the only code that makes AF_ALG and AIO syscalls.
 *
 * A single record is a batch of one: every caller builds an array of
 * struct kaio_op and hands it to kaio_key_run().
 */
#ifndef KCAPI_AIO_ENGINE_H
#define KCAPI_AIO_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KAIO_BLOCK 16
#define KAIO_MAX_BATCH 32      /* op sockets per key, pipes per call */
#define KAIO_GCM_KERNEL_IVLEN 12

enum kaio_mode { KAIO_CBC = 0, KAIO_CTR = 1, KAIO_GCM = 2, KAIO_NMODES = 3 };

/* How a batch reached the kernel (or did not). */
enum kaio_path { KAIO_PATH_AIO = 0, KAIO_PATH_SYNC = 1, KAIO_PATH_SOFTWARE = 2, KAIO_NPATHS = 3 };

/*
 * Why work went to software (or AIO fell back to sync). Every fallback is
 * counted under one of these and has a readable name (kaio_reason_name).
 */
enum kaio_reason {
    KAIO_R_NONE = 0,
    KAIO_R_NO_AF_ALG,        /* socket(AF_ALG) fails: kernel lacks AF_ALG */
    KAIO_R_ALG_MISSING,      /* bind() of the algorithm fails: module/alg absent */
    KAIO_R_IV_LENGTH,        /* GCM IV length the kernel rejects (not 12) */
    KAIO_R_FD_BUDGET,        /* configured fd budget spent */
    KAIO_R_AIO_UNAVAILABLE,  /* io_setup/io_submit unusable: AIO -> sync */
    KAIO_R_TOO_LARGE,        /* AEAD message cannot fit the socket send buffer */
    KAIO_R_KERNEL_ERROR,     /* the kernel refused an operation (errno kept in op) */
    KAIO_R_FORCED,           /* backend forced to software by configuration */
    KAIO_R_PATTERN,          /* a usage pattern one kernel op cannot express (GCM streaming) */
    KAIO_R_SMALL_RECORD,     /* below the configured kernel size threshold */
    KAIO_R_TAG_LENGTH,       /* GCM tag length the kernel rejects */
    KAIO_R_TAG_REPLAY,       /* GCM tag failed in one op: software redoes it to release the
                                plaintext at update, as OpenSSL does (final still fails) */
    KAIO_NREASONS
};

/*
 * One independent operation.
 *   CBC: len is a multiple of 16, no padding; iv is 16 bytes.
 *   CTR: any len; iv is the 16-byte initial counter block, incremented as a
 *        128-bit big-endian integer (as the kernel's ctr(aes) and OpenSSL do).
 *   GCM: one whole AEAD message: iv (ivlen bytes), aad, in -> out, tag.
 *        Encrypt writes taglen bytes to tag; decrypt checks tag and fails the
 *        op with status KAIO_EBADMSG on mismatch (out content then undefined:
 *        callers must not release it).
 * in == out is allowed (in place); any other overlap is not.
 */
struct kaio_op {
    int encrypt;
    const unsigned char *iv;
    size_t ivlen;
    const unsigned char *aad;
    size_t aadlen;
    const unsigned char *in;
    unsigned char *out;
    size_t len;
    unsigned char *tag;
    size_t taglen;
    /* results, written by the runner */
    int status;              /* 0 done; KAIO_EBADMSG; KAIO_NOT_RUN (see reason) */
    int err;                 /* errno from the kernel when status == KAIO_NOT_RUN */
    enum kaio_reason reason; /* why it was not run in the kernel */
};

#define KAIO_EBADMSG (-74)   /* == -EBADMSG: GCM tag mismatch */
#define KAIO_NOT_RUN (-1)    /* not done here: the caller runs it elsewhere (software) */

/* ---------------- probe ---------------- */

struct kaio_mode_caps {
    int available;           /* the kernel binds this algorithm */
    char alg[32];            /* "cbc(aes)", "ctr(aes)", "gcm(aes)" */
    char driver[64];         /* driver name as the kernel reports it, "" if unknown */
    enum kaio_reason reason; /* why not available */
    int err;                 /* errno of the failing call */
};

struct kaio_caps {
    int af_alg;              /* socket(AF_ALG) works */
    int af_alg_err;
    int aio;                 /* io_setup works and a real submission completed */
    int aio_err;
    struct kaio_mode_caps mode[KAIO_NMODES];
};

/*
 * Probe once per process (cached; redone in a forked child). Thread-safe.
 * Returns a pointer to the cached result, never NULL.
 */
const struct kaio_caps *kaio_probe(void);

/* ---------------- settings ---------------- */

/* fds the engine may hold in total (tfm + op sockets); beyond it keys fail
 * with KAIO_R_FD_BUDGET. 0 = default (256). */
void kaio_set_fd_budget(unsigned int fds);
/* Hide AIO from the engine (as if io_setup failed): for tests and the
 * "sync" backend. */
void kaio_set_aio_disabled(int disabled);

/*
 * Exact batching (off by default): the CBC decryptions of a batch run as ONE
 * kernel operation over their ciphertexts (scatter/gather, no copies), then
 * each record's first block is fixed up in user space:
 * P1 = D(C1) xor IV_i = kernel_output_block xor prev_last_C xor IV_i.
 * Likewise the CTR ops of a batch: their counter blocks go through one
 * ecb(aes) operation and the keystream is XORed in user space.
 * KAIO_C_KERNEL_OPS counts kernel operations and KAIO_C_OPS_COALESCED the
 * records that shared one, so the saving is visible. Results are identical
 * either way.
 */
void kaio_set_coalesce(int on);

/* ---------------- keys and batches ---------------- */

struct kaio_key;

/*
 * A key handle: one tfm socket bound to the mode's algorithm and keyed, op
 * sockets accepted lazily (at most KAIO_MAX_BATCH). Returns NULL and sets
 * *reason (and *err) when the kernel cannot take it; the caller then runs the
 * key in software. Remembers the creating pid: a forked child rebuilds its
 * own sockets and never touches the parent's.
 */
struct kaio_key *kaio_key_new(enum kaio_mode mode, const unsigned char *key, size_t keylen,
                              enum kaio_reason *reason, int *err);
void kaio_key_free(struct kaio_key *k);

/*
 * Run n (<= KAIO_MAX_BATCH) independent ops. path is KAIO_PATH_AIO (one
 * io_submit of n reads; falls back to sync, counted, when AIO is unusable) or
 * KAIO_PATH_SYNC (sendmsg + read per op). Sets every op's status. Ops the
 * kernel cannot take (GCM IV length, tag length, too large, kernel error)
 * get status KAIO_NOT_RUN with a reason: the caller runs those elsewhere.
 * Returns the number of ops with status KAIO_NOT_RUN.
 * Runs on one key are serialized (a mutex per key); different keys run in
 * parallel. The engine counts KAIO_R_AIO_UNAVAILABLE fallbacks itself; for
 * ops it returns as KAIO_NOT_RUN the caller counts the software run.
 * One kernel operation carries at most 256 KiB (CBC/CTR records are split
 * beyond that; larger GCM messages come back KAIO_R_TOO_LARGE).
 */
size_t kaio_key_run(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path);

/* ---------------- counters (process-wide; each thread counts into its own slab) ---------------- */

enum kaio_counter {
    KAIO_C_OPS_AIO = 0,      /* operations per path */
    KAIO_C_OPS_SYNC,
    KAIO_C_OPS_SOFTWARE,
    KAIO_C_BATCHES_AIO,      /* backend calls per path */
    KAIO_C_BATCHES_SYNC,
    KAIO_C_BATCHES_SOFTWARE,
    KAIO_C_IO_SUBMIT,        /* io_submit calls */
    KAIO_C_SYSCALLS,         /* every syscall the engine made */
    KAIO_C_KERNEL_OPS,       /* kernel cipher operations (may be < records) */
    KAIO_C_BYTES_KERNEL,
    KAIO_C_BYTES_SOFTWARE,
    KAIO_C_TAG_FAILURES,
    KAIO_C_OPS_COALESCED,    /* records that shared one kernel operation (coalesce), not in ops_aio/ops_sync */
    KAIO_NCOUNTERS
};

struct kaio_counters {
    uint64_t c[KAIO_NCOUNTERS];
    uint64_t fallback[KAIO_NREASONS];
};

void kaio_count(enum kaio_counter c, uint64_t n);
void kaio_count_fallback(enum kaio_reason r, uint64_t n);
/*
 * A block of counters that one thread writes at a time (a cipher context's):
 * counting into it is a plain add on memory nobody else writes. Attached, it
 * is part of every read; detached, its counts join the totals.
 */
#define KAIO_COUNT_SLOTS (KAIO_NCOUNTERS + KAIO_NREASONS)
#define KAIO_COUNT_FALLBACK(r) (KAIO_NCOUNTERS + (r))
struct kaio_count_block {
    uint64_t v[KAIO_COUNT_SLOTS]; /* relaxed atomic load + store by the writer; any thread reads */
    struct kaio_count_block *prev, *next;
    int attached;
    int thread;                            /* a thread's own block (freed with it) */
};
void kaio_block_attach(struct kaio_count_block *b);
void kaio_block_detach(struct kaio_count_block *b);

static inline void kaio_block_add(struct kaio_count_block *b, unsigned int slot, uint64_t n)
{
    __atomic_store_n(&b->v[slot], __atomic_load_n(&b->v[slot], __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
void kaio_counters_get(struct kaio_counters *out);
void kaio_counters_reset(void);

const char *kaio_reason_name(enum kaio_reason r);   /* "no AF_ALG", ... */
const char *kaio_counter_name(enum kaio_counter c);  /* "ops_aio", ... */
const char *kaio_path_name(enum kaio_path p);        /* "aio", "sync", "software" */
const char *kaio_mode_name(enum kaio_mode m);        /* "cbc", "ctr", "gcm" */

#ifdef __cplusplus
}
#endif
#endif
