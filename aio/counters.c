/* Process-wide counters (lock-free) and the readable names of the engine's enums. */
#include "kcapi-aio/engine.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic uint64_t counters[KAIO_NCOUNTERS];
static _Atomic uint64_t fallbacks[KAIO_NREASONS];
static _Atomic uint64_t max_inflight;

/* Touched once per kernel batch, never per software record. */
void kaio_note_inflight(uint64_t n)
{
    uint64_t cur = atomic_load_explicit(&max_inflight, memory_order_relaxed);

    while (n > cur
           && !atomic_compare_exchange_weak_explicit(&max_inflight, &cur, n, memory_order_relaxed,
                                                     memory_order_relaxed))
        ;
}

void kaio_count(enum kaio_counter c, uint64_t n)
{
    if ((unsigned)c < KAIO_NCOUNTERS)
        atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

void kaio_count_fallback(enum kaio_reason r, uint64_t n)
{
    if ((unsigned)r < KAIO_NREASONS)
        atomic_fetch_add_explicit(&fallbacks[r], n, memory_order_relaxed);
}

void kaio_counters_get(struct kaio_counters *out)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < KAIO_NCOUNTERS; i++)
        out->c[i] = atomic_load_explicit(&counters[i], memory_order_relaxed);
    for (i = 0; i < KAIO_NREASONS; i++)
        out->fallback[i] = atomic_load_explicit(&fallbacks[i], memory_order_relaxed);
    out->max_inflight = atomic_load_explicit(&max_inflight, memory_order_relaxed);
}

void kaio_counters_reset(void)
{
    size_t i;

    for (i = 0; i < KAIO_NCOUNTERS; i++)
        atomic_store_explicit(&counters[i], 0, memory_order_relaxed);
    for (i = 0; i < KAIO_NREASONS; i++)
        atomic_store_explicit(&fallbacks[i], 0, memory_order_relaxed);
    atomic_store_explicit(&max_inflight, 0, memory_order_relaxed);
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
