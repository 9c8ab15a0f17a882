/*
 * Process-wide counters and the readable names of the engine's enums.
 *
 * Each thread counts into its own slab (no shared cache line, no locked
 * instruction per record); a read sums the slabs of the living threads and
 * the totals of the threads that have ended. A thread's slab is folded into
 * those totals when the thread exits (a pthread key destructor), and every
 * slab is freed when the module is unloaded.
 */
#include "kcapi-aio/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct slab {
    /* Written by the owning thread only (load + store, no locked add); read by any. */
    _Atomic uint64_t v[KAIO_NCOUNTERS + KAIO_NREASONS];
    struct slab *prev, *next;
};

#define NV (KAIO_NCOUNTERS + KAIO_NREASONS)
#define FB(r) (KAIO_NCOUNTERS + (r))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab *live;          /* the slabs of running threads (under lock) */
static uint64_t ended[NV];         /* threads that exited, and counts without a slab (under lock) */
static uint64_t base[NV];          /* the sums at the last reset (under lock) */
static pthread_key_t key;
static int key_made;               /* 1: key made, -1: could not be made (under lock) */
static __thread struct slab *mine;

static void fold_locked(struct slab *s)
{
    size_t i;

    for (i = 0; i < NV; i++)
        ended[i] += atomic_load_explicit(&s->v[i], memory_order_relaxed);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        live = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
}

/* The key's destructor: the thread is ending, its counts go to the totals. */
static void thread_end(void *v)
{
    struct slab *s = v;

    pthread_mutex_lock(&lock);
    fold_locked(s);
    pthread_mutex_unlock(&lock);
    if (mine == s)
        mine = NULL;
    free(s);
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

static struct slab *slab_new(void)
{
    struct slab *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    pthread_mutex_lock(&lock);
    if (key_made == 0) {
        key_made = pthread_key_create(&key, thread_end) == 0 ? 1 : -1;
        if (key_made == 1)
            pthread_atfork(fork_prepare, fork_after, fork_after);
    }
    if (key_made != 1 || pthread_setspecific(key, s) != 0) {
        pthread_mutex_unlock(&lock);
        free(s);
        return NULL;
    }
    s->next = live;
    if (live != NULL)
        live->prev = s;
    live = s;
    pthread_mutex_unlock(&lock);
    mine = s;
    return s;
}

/* Unloading the module: no destructor may point into it any more, no slab may stay behind. */
__attribute__((destructor)) static void counters_unload(void)
{
    pthread_mutex_lock(&lock);
    if (key_made == 1)
        pthread_key_delete(key);
    key_made = 0;
    while (live != NULL) {
        struct slab *s = live;

        fold_locked(s);
        free(s);
    }
    mine = NULL;
    pthread_mutex_unlock(&lock);
}

static void add(size_t i, uint64_t n)
{
    struct slab *s = mine;

    if (s == NULL && (s = slab_new()) == NULL) {
        pthread_mutex_lock(&lock);
        ended[i] += n;
        pthread_mutex_unlock(&lock);
        return;
    }
    atomic_store_explicit(&s->v[i], atomic_load_explicit(&s->v[i], memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void kaio_count(enum kaio_counter c, uint64_t n)
{
    if ((unsigned)c < KAIO_NCOUNTERS)
        add(c, n);
}

void kaio_count_fallback(enum kaio_reason r, uint64_t n)
{
    if ((unsigned)r < KAIO_NREASONS)
        add(FB(r), n);
}

void kaio_count_software(uint64_t bytes, enum kaio_reason why)
{
    struct slab *s = mine;

    if (s == NULL && (s = slab_new()) == NULL) {
        kaio_count(KAIO_C_OPS_SOFTWARE, 1);
        kaio_count(KAIO_C_BATCHES_SOFTWARE, 1);
        kaio_count(KAIO_C_BYTES_SOFTWARE, bytes);
        kaio_count_fallback(why, 1);
        return;
    }
#define BUMP(i, n) atomic_store_explicit(&s->v[i], atomic_load_explicit(&s->v[i], memory_order_relaxed) + (n), \
                                         memory_order_relaxed)
    BUMP(KAIO_C_OPS_SOFTWARE, 1);
    BUMP(KAIO_C_BATCHES_SOFTWARE, 1);
    BUMP(KAIO_C_BYTES_SOFTWARE, bytes);
    if ((unsigned)why < KAIO_NREASONS)
        BUMP(FB(why), 1);
#undef BUMP
}

static void sum_locked(uint64_t out[NV])
{
    const struct slab *s;
    size_t i;

    memcpy(out, ended, sizeof(ended));
    for (s = live; s != NULL; s = s->next)
        for (i = 0; i < NV; i++)
            out[i] += atomic_load_explicit(&s->v[i], memory_order_relaxed);
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
}

void kaio_counters_reset(void)
{
    /* Other threads' slabs are theirs to write: a reset moves the baseline instead. */
    pthread_mutex_lock(&lock);
    sum_locked(base);
    pthread_mutex_unlock(&lock);
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
        [KAIO_R_TOO_LARGE] = "record too large for the socket buffer",
        [KAIO_R_KERNEL_ERROR] = "kernel refused the operation",
        [KAIO_R_FORCED] = "software backend configured",
        [KAIO_R_PATTERN] = "usage pattern one kernel operation cannot express",
        [KAIO_R_SMALL_RECORD] = "record below kernel_min_bytes",
        [KAIO_R_TAG_LENGTH] = "tag length the kernel rejects",
        [KAIO_R_TAG_REPLAY] = "tag mismatch, plaintext redone in software",
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
    };

    return (unsigned)c < KAIO_NCOUNTERS && names[c] != NULL ? names[c] : "unknown";
}

const char *kaio_path_name(enum kaio_path p)
{
    static const char *const names[KAIO_NPATHS] = { "aio", "sync", "software" };

    return (unsigned)p < KAIO_NPATHS ? names[p] : "unknown";
}

const char *kaio_mode_name(enum kaio_mode m)
{
    static const char *const names[KAIO_NMODES] = { "cbc", "ctr", "gcm" };

    return (unsigned)m < KAIO_NMODES ? names[m] : "unknown";
}
