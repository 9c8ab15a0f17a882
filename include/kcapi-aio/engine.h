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
    KAIO_R_TOO_LARGE,        /* AEAD message cannot fit one kernel operation (send buffer, device cap) */
    KAIO_R_KERNEL_ERROR,     /* the kernel refused an operation (errno kept in op) */
    KAIO_R_FORCED,           /* backend forced to software by configuration */
    KAIO_R_PATTERN,          /* a usage pattern one kernel op cannot express (GCM streaming) */
    KAIO_R_SMALL_RECORD,     /* below the configured kernel size threshold */
    KAIO_R_TAG_LENGTH,       /* GCM tag length the kernel rejects */
    KAIO_R_TAG_REPLAY,       /* GCM tag failed in one op: software redoes it to release the
                                plaintext at update, as OpenSSL does (final still fails) */
    KAIO_R_CPU_DRIVER,       /* auto: the kernel's driver runs on this CPU (AES-NI, generic C,
                                ...): the in-process AES does the same work without a round trip */
    KAIO_R_SYNC_ONLY,        /* auto: a device is listed but this kernel lets AF_ALG bind only
                                synchronous software implementations (Linux 7.2) */
    KAIO_R_FD_LOST,          /* our socket's fd number was closed (and maybe reused) under us
                                and no new socket could take its place in this call */
    KAIO_R_KEY_BUSY,         /* the key is held by a job paused on the same thread, which cannot
                                resume before this call returns */
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

/* What runs a kernel driver: the CPU's own instructions (or plain C), or a device. */
enum kaio_driver_class { KAIO_DRV_NONE = 0, KAIO_DRV_CPU = 1, KAIO_DRV_DEVICE = 2 };

#define KAIO_DRIVER_NAME 128
#define KAIO_DEVICE_MAX_OP (64u * 1024) /* bytes per kernel operation on a device driver */

struct kaio_mode_caps {
    int available;           /* the kernel binds this algorithm */
    char alg[32];            /* "cbc(aes)", "ctr(aes)", "gcm(aes)" */
    char driver[KAIO_DRIVER_NAME]; /* the driver AF_ALG binds, "" if unknown */
    char module[64];         /* its module ("kernel": built in), "" if unknown */
    enum kaio_driver_class drv_class; /* CPU or device (KAIO_DRV_NONE: not available) */
    int drv_known;           /* 0: a driver never seen, counted as a device */
    int drv_flags_known;     /* drv_flags came from NETLINK_CRYPTO (crypto_user loaded) */
    uint32_t drv_flags;      /* CRYPTO_ALG_* flags of the driver */
    char listed[KAIO_DRIVER_NAME]; /* a higher-priority driver AF_ALG cannot bind, "" if none */
    enum kaio_driver_class listed_class;
    size_t op_cap;           /* bytes one kernel operation may carry on this driver, 0: no cap */
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

/*
 * Batching across waiting jobs (off by default): inside a cooperative job (see
 * kaio_key_run_wait) a wave's reads for a device driver are not submitted at
 * once but queued on the thread; the job pauses and the first job of the
 * thread that runs again submits the whole queue, every job's reads, in one
 * io_submit. Off: each wave submits its own reads. CPU drivers complete
 * inside io_submit, so their waves never wait for a queue.
 */
void kaio_set_async_batch(int on);

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
 * One kernel operation carries at most 256 KiB, KAIO_DEVICE_MAX_OP on a
 * device driver (CBC/CTR records are split beyond that; larger GCM messages
 * come back KAIO_R_TOO_LARGE). max_inflight counts the reads one AIO wave has
 * outstanding together (1 on the sync path).
 *
 * Sockets are proven ours before use: in each call, every fd the engine is
 * about to write to (an op socket before its first sendmsg, the tfm before
 * accept) is compared with the socket it made (SO_COOKIE, one getsockopt,
 * counted in KAIO_C_SYSCALLS). An fd that is closed or is now someone else's
 * (a daemon closed every fd and reused the numbers) is forgotten without
 * being closed (KAIO_C_FDS_LOST) and replaced by a new socket; if none can
 * be made, the ops come back KAIO_NOT_RUN with KAIO_R_FD_LOST (or
 * KAIO_R_FD_BUDGET). Not caught: another thread closing the fd and reusing
 * its number between the check and the sendmsg (microseconds).
 */
size_t kaio_key_run(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path);

/*
 * Waiting inside a cooperative job (the provider maps it onto OpenSSL's
 * ASYNC jobs). kaio_key_run_wait is kaio_key_run, except that when the AIO
 * reads of a wave are not all complete right after io_submit (a device
 * driver; CPU drivers complete inside io_submit), the engine calls
 * w->pause(w->arg, fd, p) instead of blocking. fd is the job's own
 * completion eventfd, which the engine gets from w->fd(w->arg, make): the
 * one of the job's owner (one per owner, kept from one pause to the next, see
 * kaio_job_fd_get), made when make is set and there is none yet; -1 when
 * there is none. Servers register a job's fd as that connection's own, so
 * no two owners may share one. The kernel signals it when the job's reads
 * complete (each read names its job's eventfd), and the engine when the job
 * must run again for another reason (a queue to submit, results to collect);
 * it may be readable without cause, never unreadable with one. pause returns 0
 * once the job was resumed (the engine reaps, and pauses again if its reads
 * are still out), or -1 when it could not pause (the engine then blocks).
 * Several jobs of one thread may be paused at once: whoever reaps hands each
 * completion to the batch it belongs to. A job paused must be resumed on the
 * thread that paused it. While paused it holds the key (runs on the key wait);
 * a job of the same thread that wants that key pauses (p then holds nothing)
 * until a later resume finds it free, or, when it cannot pause, gets its ops
 * back KAIO_NOT_RUN with KAIO_R_KEY_BUSY. On a device, a job's reads may also
 * wait unsubmitted in the thread's queue while it is paused (see
 * kaio_set_async_batch): the job that starts the queue makes its own fd
 * readable, and whichever call of the thread runs next submits them.
 *
 * A job that will never be resumed (its owner is freed) must be given to
 * kaio_pending_abandon(p), on that thread, before its buffers go: it takes
 * the batch's queued reads out of the queue (never submitted: their sockets
 * are closed), waits until the kernel is done with every submitted read (so
 * no write lands in freed memory), frees what the batch held and releases
 * the key. The ops' results are then undefined. Freeing the key of a paused
 * job abandons it first. While a job may pause, the kernel writes its
 * results into the engine's own buffer, copied out when the job resumes: an
 * owner that frees the ops' buffers before it gives the job up (libssl frees
 * a connection's record buffers first) gets no write into them.
 *
 * After fork, a child's copy of a paused job may be resumed or abandoned in
 * the child: its reads belong to the parent's AIO context (and the kernel
 * writes the parent's copy of the buffers), so the child never looks at
 * that context; the chunks that were in flight run again on the child's own
 * sockets (their input is intact: nothing was written into the ops'
 * buffers) and the ops complete there. The child must not wait on the
 * inherited eventfd before that first resume (the parent's, which may never
 * fire for the child); kaio_job_fd_get gives the child an eventfd of its own
 * under the same number.
 */
struct kaio_pending;
struct kaio_wait {
    int (*fd)(void *arg, int make);
    int (*pause)(void *arg, int fd, struct kaio_pending *p);
    void *arg;
};
size_t kaio_key_run_wait(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path,
                         const struct kaio_wait *w);
void kaio_pending_abandon(struct kaio_pending *p);

/*
 * A job owner's completion eventfd (non-blocking, close-on-exec), for
 * struct kaio_wait's fd hook: start with fd = -1. kaio_job_fd_get makes it
 * the first time (one eventfd syscall) and returns the same fd afterwards;
 * in a forked child it first puts a new eventfd of the child's own under the
 * same number (the inherited one is shared with the parent). It returns the
 * fd, or -errno. kaio_job_fd_close closes it; call it when the owner goes
 * (not while a job of the owner is paused: abandon that first).
 */
struct kaio_job_fd {
    int fd;
    unsigned gen;
};
int kaio_job_fd_get(struct kaio_job_fd *f);
void kaio_job_fd_close(struct kaio_job_fd *f);

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
    KAIO_C_FDS_LOST,         /* our fds found closed or now someone else's: forgotten, never closed */
    KAIO_C_ASYNC_PAUSES,     /* times a caller's job paused on a batch instead of blocking
                                (counted by the caller's wait, see kaio_key_run_wait) */
    KAIO_C_ASYNC_ABANDONED,  /* paused batches given up (their owner freed): the kernel's
                                writes were waited out (or belonged to the parent of a fork) */
    KAIO_C_ASYNC_FORK_REDONE, /* chunks a forked child's copy of a paused job ran again */
    KAIO_C_AIO_READS,        /* AIO reads submitted */
    KAIO_C_AIO_READS_ENDED,  /* of those, reaped or waited out: equal to aio_reads when none is out */
    KAIO_NCOUNTERS
};

struct kaio_counters {
    uint64_t c[KAIO_NCOUNTERS];
    uint64_t fallback[KAIO_NREASONS];
    uint64_t max_inflight;   /* most kernel operations one thread had outstanding at once,
                                paused jobs' included (the highest of any thread) */
};

void kaio_count(enum kaio_counter c, uint64_t n);
void kaio_count_fallback(enum kaio_reason r, uint64_t n);
/* n kernel operations are outstanding at once: raises max_inflight (kernel batches only). */
void kaio_note_inflight(uint64_t n);
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
const char *kaio_driver_class_name(enum kaio_driver_class c); /* "CPU", "device", "none" */

#ifdef __cplusplus
}
#endif
#endif
