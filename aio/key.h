/* The key handle's layout, shared by key.c (sockets) and run.c (batches). */
#ifndef KAIO_KEY_H
#define KAIO_KEY_H

#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct kaio_sock {
    int fd;              /* -1: not open */
    uint64_t id;         /* the socket's identity (kaio_sys_sock_id): tells ours
                            from whatever now has the fd number */
    unsigned long proven; /* the key's batch in which it was last proven ours */
};

/* One tfm socket and the op sockets accepted from it. */
struct kaio_tfm {
    struct kaio_sock tfm;
    struct kaio_sock op[KAIO_MAX_BATCH];
    int err; /* sticky -errno when the kernel refused this tfm (GCM tag length) */
};

/* GCM sets the tag length on the tfm and the kernel refuses to change it
 * once op sockets exist (EBUSY), so each tag length gets its own tfm, made
 * when first needed. CBC/CTR use slot 0 only. */
#define KAIO_TAG_SLOTS 17

struct kaio_key {
    enum kaio_mode mode;
    unsigned char key[32];
    size_t keylen;
    pid_t pid;           /* creating process */
    unsigned gen;        /* fork generation the sockets belong to */
    pthread_mutex_t lock;
    const void *holder;  /* the thread holding lock (run.c), NULL: none; atomic */
    unsigned long batch; /* runs so far (under lock): each proves its sockets once */
    int lost;            /* a socket of this key was found taken over in this batch */
    size_t maxmsg;       /* bytes one kernel operation may carry; 0 = not learnt */
    size_t opcap;        /* the driver's own cap per operation (devices); 0 = none */
    struct kaio_tfm *t[KAIO_TAG_SLOTS];
    /* CTR coalescing (run.c): ecb(aes) under the same key, opened when first
     * needed; its op[0] turns a whole batch's counter blocks into keystream. */
    struct kaio_tfm *ecb;
    unsigned char *ks;   /* keystream scratch kept between batches; cleansed when freed */
    size_t ks_cap;
    struct kaio_pending *paused; /* the batch a job paused on while holding the key (run.c) */
};

/* Starts a batch: every socket must be proven ours again before use. */
void kaio_key_batch_begin(struct kaio_key *k);
/* Sockets of a child's inherited key are dropped here and rebuilt lazily. */
void kaio_key_check_fork(struct kaio_key *k);
/* Drops every socket (closing only fds that are still ours). */
void kaio_key_drop_all(struct kaio_key *k);
/* The tfm for a slot, opened and keyed when first needed; NULL and *err. */
struct kaio_tfm *kaio_key_tfm(struct kaio_key *k, unsigned slot, int *err);
/* Op socket idx of t, proven ours in this batch: an fd that is no longer the
 * socket we made is forgotten (not closed) and a new socket accepted in its
 * place, from the tfm (itself proven, or reopened). Returns the fd or -errno. */
int kaio_key_op(struct kaio_key *k, struct kaio_tfm *t, unsigned idx);
/* Closes op socket idx (its kernel state is unknown after a failure). */
void kaio_key_op_drop(struct kaio_tfm *t, unsigned idx);

/* The ecb(aes) op socket of a CTR key, tfm and socket opened when first
 * needed and proven ours like kaio_key_op; its fd or -errno. A kernel that cannot bind or key ecb(aes) is
 * remembered, so later batches do not try again. */
int kaio_key_ecb(struct kaio_key *k);
/* Closes the ecb op socket (its kernel state is unknown after a failure). */
void kaio_key_ecb_drop(struct kaio_key *k);
/* The key's keystream scratch, at least len bytes (grown as needed); NULL
 * when out of memory. */
unsigned char *kaio_key_scratch(struct kaio_key *k, size_t len);

#endif
