/*
 * Test-only API of the engine (link the static library `kaio`; not part of
 * the public contract, not exported by the provider module).
 *
 * Fault injection
 * ---------------
 * Rules come from kaio_fault_set() or, once at first use, from the
 * environment variable KCAPI_AIO_FAULT, so tests that only see the provider
 * (the kernel lab) can inject too. Syntax: rules separated by ','
 *
 *     CALL=WHAT[:FIRST[:COUNT]]
 *
 *   CALL   socket bind setsockopt accept sendmsg read io_setup io_submit
 *          io_getevents eventfd close peek malloc
 *          ("read" covers both a synchronous read and the result of one
 *          reaped AIO read. "peek" is the look for completions a batch that
 *          may pause its job takes without waiting: any errno there means
 *          "not there yet", and the completion is signalled on the eventfd
 *          right after, as a device that answers a little later would; the
 *          kernel still does the work. "malloc" is every heap allocation of
 *          the engine, which then returns NULL whatever WHAT names.)
 *   WHAT   an errno name: EBUSY EAGAIN EINTR EBADMSG EMFILE ENFILE EBADF
 *          ENOTSOCK ENOSYS EPERM EINVAL ENOMEM EIO
 *          or "short" (io_submit only: submits half of the iocbs, at least 1)
 *   FIRST  1-based number of the call of that kind (counted from when the
 *          rules were set) at which the fault starts; default 1
 *   COUNT  how many consecutive calls fail; default 1; 0 = every call from
 *          FIRST on
 *
 * Example: KCAPI_AIO_FAULT="io_submit=short:2,read=EBADMSG:3" makes the second
 * io_submit short and the third read fail with EBADMSG.
 * Errors are injected instead of the real call (nothing reaches the
 * kernel), except for "read" with an errno other than EAGAIN/EINTR/EBUSY:
 * there the real read runs and its result is replaced, so the op socket is
 * left as a real failure (EBADMSG, EIO) leaves it. Read faults are taken in
 * op order on both paths (AIO decides them when it prepares each iocb), so
 * "read=EBADMSG:3" fails the third op of a batch either way.
 * With no rules the only cost is one relaxed atomic load per syscall.
 */
#ifndef KAIO_TEST_H
#define KAIO_TEST_H

#include "kcapi-aio/engine.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kaio_fault_call {
    KAIO_F_SOCKET = 0,
    KAIO_F_BIND,
    KAIO_F_SETSOCKOPT,
    KAIO_F_ACCEPT,
    KAIO_F_SENDMSG,
    KAIO_F_READ,
    KAIO_F_IO_SETUP,
    KAIO_F_IO_SUBMIT,
    KAIO_F_IO_GETEVENTS,
    KAIO_F_EVENTFD,
    KAIO_F_CLOSE,
    KAIO_F_PEEK,
    KAIO_F_MALLOC,
    KAIO_F_NCALLS
};

#define KAIO_FAULT_SHORT (-1) /* the "short" fault (io_submit) */
#define KAIO_FAULT_MAX_RULES 16

struct kaio_fault_rule {
    enum kaio_fault_call call;
    int err;                  /* positive errno, or KAIO_FAULT_SHORT */
    unsigned long first;      /* 1-based */
    unsigned long count;      /* 0 = unbounded */
};

/* Parses spec into rules; returns the number of rules or -1 (bad syntax). */
int kaio_fault_parse(const char *spec, struct kaio_fault_rule *rules, size_t max);
/* Replaces the active rules (NULL or "" clears them) and restarts the call
 * numbering. Returns 0, or -1 on bad syntax (rules then unchanged). */
int kaio_fault_set(const char *spec);
/* How many faults have been injected since the rules were set. */
unsigned long kaio_fault_hits(void);
const char *kaio_fault_call_name(enum kaio_fault_call c);

/* fds the engine holds now (tfm + op sockets, all keys). */
unsigned kaio_fds_held(void);
/* Sockets of one key: tfm sockets and accepted op sockets. */
void kaio_key_sockets(const struct kaio_key *k, unsigned *tfms, unsigned *ops);
/* Caps the bytes of one kernel operation (forces the record split path with
 * small records, which keeps tests fast under TCG). 0 = no cap. */
void kaio_set_chunk_limit(size_t bytes);
/* The largest AEAD message (aad + data + tag) and skcipher chunk this key can
 * hand the kernel; 0 until the key's first op socket exists. */
size_t kaio_key_max_msg(const struct kaio_key *k);

/* ---- /proc/crypto and the driver classifier (driver.c; text only) ---- */

struct kaio_crypto_entry {
    char name[64];
    char driver[KAIO_DRIVER_NAME];
    char module[64];
    long priority;
};

/* The drivers /proc/crypto's text lists under algorithm name alg, highest
 * priority first (at most max); returns how many. */
size_t kaio_crypto_drivers(const char *text, const char *alg, struct kaio_crypto_entry *out,
                           size_t max);
/* The entry of driver (by driver name); 0 and a zeroed *out when absent. */
int kaio_crypto_find_driver(const char *text, const char *driver, struct kaio_crypto_entry *out);
/* CPU or device. flags: the driver's CRYPTO_ALG_* flags when flags_known (a
 * KERN_DRIVER_ONLY driver is a device). *known = 0 when a name was never seen
 * (then the answer is KAIO_DRV_DEVICE). text may be NULL. */
enum kaio_driver_class kaio_driver_classify(const char *text, const char *driver, uint32_t flags,
                                            int flags_known, int *known);

#ifdef __cplusplus
}
#endif
#endif
