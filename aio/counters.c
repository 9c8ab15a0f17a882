/*
 * Process-wide counters and the readable names of the engine's enums.
 *
 * Counts go into blocks that one thread writes at a time (no shared cache
 * line, no locked instruction per record): each thread has one, made at its
 * first count, and a caller may attach its own (a cipher context does). A
 * read sums the attached blocks and the totals of the detached ones. A
 * thread's block is folded into those totals when the thread exits (a
 * pthread key destructor); when the module is unloaded every block is
 * detached and the threads' blocks are freed.
 */
#include "kcapi-aio/engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NV KAIO_COUNT_SLOTS
#define FB(r) KAIO_COUNT_FALLBACK(r)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct kaio_count_block *live; /* attached blocks (under lock) */
static uint64_t ended[NV];            /* detached blocks, and counts without a block (under lock) */
static uint64_t base[NV];             /* the sums at the last reset (under lock) */
static pthread_key_t key;
static int key_made;                  /* 1: key made, -1: could not be made (under lock) */
static __thread struct kaio_count_block *mine;

static void attach_locked(struct kaio_count_block *b)
{
    b->attached = 1;
    b->prev = NULL;
    b->next = live;
    if (live != NULL)
        live->prev = b;
    live = b;
}

static void detach_locked(struct kaio_count_block *b)
{
    size_t i;

    if (!b->attached)
        return;
    for (i = 0; i < NV; i++)
        ended[i] += __atomic_load_n(&b->v[i], __ATOMIC_RELAXED);
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        live = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
    b->attached = 0;
}

void kaio_block_attach(struct kaio_count_block *b)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_lock(&lock);
    attach_locked(b);
    pthread_mutex_unlock(&lock);
}

void kaio_block_detach(struct kaio_count_block *b)
{
    pthread_mutex_lock(&lock);
    detach_locked(b);
    pthread_mutex_unlock(&lock);
}

/* The key's destructor: the thread is ending, its counts go to the totals. */
static void thread_end(void *v)
{
    struct kaio_count_block *b = v;

    kaio_block_detach(b);
    if (mine == b)
        mine = NULL;
    free(b);
}

/* A fork while another thread holds the lock must not leave it held in the child. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_after(void)
{
    pthread_mutex_unlock(&lock);
}

static struct kaio_count_block *thread_block(void)
{
    struct kaio_count_block *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    pthread_mutex_lock(&lock);
    if (key_made == 0) {
        key_made = pthread_key_create(&key, thread_end) == 0 ? 1 : -1;
        if (key_made == 1)
            pthread_atfork(fork_prepare, fork_after, fork_after);
    }
    if (key_made != 1 || pthread_setspecific(key, b) != 0) {
        pthread_mutex_unlock(&lock);
        free(b);
        return NULL;
    }
    b->thread = 1;
    attach_locked(b);
    pthread_mutex_unlock(&lock);
    mine = b;
    return b;
}

/* Unloading the module: no destructor may point into it any more, no block of ours may stay. */
__attribute__((destructor)) static void counters_unload(void)
{
    pthread_mutex_lock(&lock);
    if (key_made == 1)
        pthread_key_delete(key);
    key_made = 0;
    while (live != NULL) {
        struct kaio_count_block *b = live;

        detach_locked(b);
        if (b->thread)
            free(b); /* a caller's block stays its caller's */
    }
    mine = NULL;
    pthread_mutex_unlock(&lock);
}

static void add(unsigned int slot, uint64_t n)
{
    struct kaio_count_block *b = mine;

    if (b == NULL && (b = thread_block()) == NULL) {
        pthread_mutex_lock(&lock);
        ended[slot] += n;
        pthread_mutex_unlock(&lock);
        return;
    }
    kaio_block_add(b, slot, n);
}

/* The deepest the kernel's queue has been: touched once per kernel batch, never per software record. */
static uint64_t max_inflight;

void kaio_note_inflight(uint64_t n)
{
    uint64_t cur = __atomic_load_n(&max_inflight, __ATOMIC_RELAXED);

    while (n > cur && !__atomic_compare_exchange_n(&max_inflight, &cur, n, 1, __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED))
        ;
}

void kaio_count(enum kaio_counter c, uint64_t n)
{
    if ((unsigned)c < KAIO_NCOUNTERS)
        add((unsigned)c, n);
}

void kaio_count_fallback(enum kaio_reason r, uint64_t n)
{
    if ((unsigned)r < KAIO_NREASONS)
        add(FB((unsigned)r), n);
}

static void sum_locked(uint64_t out[NV])
{
    const struct kaio_count_block *b;
    size_t i;

    memcpy(out, ended, sizeof(ended));
    for (b = live; b != NULL; b = b->next)
        for (i = 0; i < NV; i++)
            out[i] += __atomic_load_n(&b->v[i], __ATOMIC_RELAXED);
}

void kaio_counters_get(struct kaio_counters *out)
{
    uint64_t v[NV];
    size_t i;

    pthread_mutex_lock(&lock);
    sum_locked(v);
    for (i = 0; i < NV; i++)
        v[i] -= base[i];
    pthread_mutex_unlock(&lock);
    memset(out, 0, sizeof(*out));
    memcpy(out->c, v, sizeof(out->c));
    memcpy(out->fallback, v + KAIO_NCOUNTERS, sizeof(out->fallback));
    out->max_inflight = __atomic_load_n(&max_inflight, __ATOMIC_RELAXED);
}

void kaio_counters_reset(void)
{
    /* Other threads' blocks are theirs to write: a reset moves the baseline instead. */
    pthread_mutex_lock(&lock);
    sum_locked(base);
    pthread_mutex_unlock(&lock);
    __atomic_store_n(&max_inflight, 0, __ATOMIC_RELAXED);
}

const char *kaio_reason_name(enum kaio_reason r)
{
    static const char *const names[KAIO_NREASONS] = {
        [KAIO_R_NONE] = "none",
        [KAIO_R_NO_AF_ALG] = "kernel has no AF_ALG",
        [KAIO_R_ALG_MISSING] = "algorithm not in the kernel",
        [KAIO_R_IV_LENGTH] = "IV length the kernel rejects",
        [KAIO_R_FD_BUDGET] = "fd budget spent",
        [KAIO_R_AIO_UNAVAILABLE] = "AIO unavailable",
        [KAIO_R_TOO_LARGE] = "message too large for one kernel operation (socket buffer or device limit)",
        [KAIO_R_KERNEL_ERROR] = "kernel refused the operation",
        [KAIO_R_FORCED] = "software backend configured",
        [KAIO_R_PATTERN] = "usage pattern one kernel operation cannot express",
        [KAIO_R_SMALL_RECORD] = "record below kernel_min_bytes",
        [KAIO_R_TAG_LENGTH] = "tag length the kernel rejects",
        [KAIO_R_TAG_REPLAY] = "tag mismatch, plaintext redone in software",
        [KAIO_R_CPU_DRIVER] = "kernel driver runs on this CPU: in-process AES is faster",
        [KAIO_R_SYNC_ONLY] = "this kernel lets AF_ALG use only synchronous software implementations",
        [KAIO_R_FD_LOST] = "socket fd closed or taken over, no new socket",
        [KAIO_R_KEY_BUSY] = "key held by a paused job of this thread",
    };

    return (unsigned)r < KAIO_NREASONS && names[r] != NULL ? names[r] : "unknown";
}

const char *kaio_counter_name(enum kaio_counter c)
{
    static const char *const names[KAIO_NCOUNTERS] = {
        [KAIO_C_OPS_AIO] = "ops_aio",
        [KAIO_C_OPS_SYNC] = "ops_sync",
        [KAIO_C_OPS_SOFTWARE] = "ops_software",
        [KAIO_C_BATCHES_AIO] = "batches_aio",
        [KAIO_C_BATCHES_SYNC] = "batches_sync",
        [KAIO_C_BATCHES_SOFTWARE] = "batches_software",
        [KAIO_C_IO_SUBMIT] = "io_submit_calls",
        [KAIO_C_SYSCALLS] = "syscalls",
        [KAIO_C_KERNEL_OPS] = "kernel_ops",
        [KAIO_C_BYTES_KERNEL] = "bytes_kernel",
        [KAIO_C_BYTES_SOFTWARE] = "bytes_software",
        [KAIO_C_TAG_FAILURES] = "tag_failures",
        [KAIO_C_OPS_COALESCED] = "ops_coalesced",
        [KAIO_C_FDS_LOST] = "fds_lost",
        [KAIO_C_ASYNC_PAUSES] = "async_pauses",
        [KAIO_C_ASYNC_ABANDONED] = "async_abandoned",
        [KAIO_C_ASYNC_FORK_REDONE] = "async_fork_redone",
        [KAIO_C_AIO_READS] = "aio_reads",
        [KAIO_C_AIO_READS_ENDED] = "aio_reads_ended",
    };

    return (unsigned)c < KAIO_NCOUNTERS && names[c] != NULL ? names[c] : "unknown";
}

const char *kaio_path_name(enum kaio_path p)
{
    static const char *const names[KAIO_NPATHS] = { "aio", "sync", "software" };

    return (unsigned)p < KAIO_NPATHS ? names[p] : "unknown";
}

const char *kaio_driver_class_name(enum kaio_driver_class c)
{
    return c == KAIO_DRV_CPU ? "CPU" : c == KAIO_DRV_DEVICE ? "device" : "none";
}

const char *kaio_mode_name(enum kaio_mode m)
{
    static const char *const names[KAIO_NMODES] = { "cbc", "ctr", "gcm" };

    return (unsigned)m < KAIO_NMODES ? names[m] : "unknown";
}
