/*
 * Key handles: a tfm socket keyed once, op sockets accepted lazily, all
 * close-on-exec and moved to fd numbers >= KAIO_FD_FLOOR; rebuilt in a
 * forked child and after finding an fd closed or taken over under us.
 * Before a batch writes to a socket (sendmsg on an op socket,
 * accept on the tfm) the fd is proven to still be the socket we made: a
 * daemon may close every fd and hand the numbers to a TCP connection. The
 * key bytes stay in the handle (a new GCM tag length or a rebuild needs a new
 * tfm) and are cleansed on free.
 */
#include "key.h"

#include "kaio_test.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sock_is_ours(const struct kaio_sock *s)
{
    uint64_t id;

    return kaio_sys_sock_id(s->fd, &id) == 0 && id == s->id;
}

/* Forgets an fd number without closing it: it is no longer our socket. */
static void sock_forget(struct kaio_sock *s)
{
    s->fd = -1;
    kaio_fd_release();
    kaio_count(KAIO_C_FDS_LOST, 1);
}

/*
 * 0 when s is the socket we made, proven by one syscall per batch; else it
 * is forgotten (never closed: after a daemon's closefrom the number may be a
 * TCP connection or someone's AF_ALG socket) and -1 is returned.
 */
static int sock_prove(struct kaio_key *k, struct kaio_sock *s)
{
    if (s->proven == k->batch)
        return 0;
    if (sock_is_ours(s)) {
        s->proven = k->batch;
        return 0;
    }
    sock_forget(s);
    k->lost = 1;
    return -1;
}

void kaio_key_batch_begin(struct kaio_key *k)
{
    k->batch++;
    k->lost = 0;
}

/* Every tfm of the key: the slots, then the ecb one (s == KAIO_TAG_SLOTS). */
static struct kaio_tfm *tfm_at(const struct kaio_key *k, unsigned s)
{
    return s < KAIO_TAG_SLOTS ? k->t[s] : k->ecb;
}

/* Forgets a socket; closes the fd only when it still is the socket we made
 * (a daemon may have closed it and the number may now be someone else's). */
static void sock_drop(struct kaio_sock *s)
{
    if (s->fd < 0)
        return;
    if (!sock_is_ours(s)) {
        sock_forget(s);
        return;
    }
    kaio_sys_close(s->fd);
    s->fd = -1;
    kaio_fd_release();
}

/* A fresh fd number equal to one we still list means that old entry was
 * closed under us: forget it without closing (the number is the new one's). */
static void forget_stale(struct kaio_key *k, int fd)
{
    unsigned s, i;

    for (s = 0; s <= KAIO_TAG_SLOTS; s++) {
        struct kaio_tfm *t = tfm_at(k, s);

        if (t == NULL)
            continue;
        if (t->tfm.fd == fd)
            sock_forget(&t->tfm);
        for (i = 0; i < KAIO_MAX_BATCH; i++)
            if (t->op[i].fd == fd)
                sock_forget(&t->op[i]);
    }
}

/* Records a socket we just made: its identity, and proven for this batch. */
static int sock_adopt(struct kaio_key *k, struct kaio_sock *s, int fd)
{
    int r;

    forget_stale(k, fd);
    r = kaio_sys_sock_id(fd, &s->id);
    if (r < 0) {
        kaio_sys_close(fd);
        kaio_fd_release();
        return r;
    }
    s->fd = fd;
    s->proven = k->batch;
    return 0;
}

static int map_open_err(int r)
{
    return r == -ENFILE ? -EMFILE : r;
}

static int tfm_open(struct kaio_key *k, struct kaio_tfm *t, unsigned slot)
{
    int fd, r;

    if (kaio_fd_reserve() < 0)
        return -EMFILE;
    fd = kaio_alg_open(k->mode);
    if (fd < 0) {
        kaio_fd_release();
        return map_open_err(fd);
    }
    fd = kaio_sys_fd_raise(fd);
    r = kaio_sys_setsockopt(fd, SOL_ALG, ALG_SET_KEY, k->key, (socklen_t)k->keylen);
    if (r == 0 && k->mode == KAIO_GCM)
        r = kaio_sys_setsockopt(fd, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, slot);
    if (r < 0) {
        kaio_sys_close(fd);
        kaio_fd_release();
        return r;
    }
    return sock_adopt(k, &t->tfm, fd);
}

struct kaio_tfm *kaio_key_tfm(struct kaio_key *k, unsigned slot, int *err)
{
    struct kaio_tfm *t = k->t[slot];
    unsigned i;
    int r;

    if (t == NULL) {
        t = kaio_sys_calloc(1, sizeof(*t));
        if (t == NULL) {
            *err = -ENOMEM;
            return NULL;
        }
        t->tfm.fd = -1;
        for (i = 0; i < KAIO_MAX_BATCH; i++)
            t->op[i].fd = -1;
        k->t[slot] = t;
    }
    if (t->err) {
        *err = t->err;
        return NULL;
    }
    if (t->tfm.fd >= 0)
        return t;
    r = tfm_open(k, t, slot);
    if (r < 0) {
        /* Only a refused tag length is final; fd shortage may pass. */
        if (r == -EINVAL && k->mode == KAIO_GCM)
            t->err = r;
        *err = r;
        return NULL;
    }
    return t;
}

/* Largest send/receive buffers the socket may have: one AEAD message must fit
 * both, and every skcipher chunk is cut to that size. */
static void raise_buffers(int fd)
{
    int v = INT_MAX;

    kaio_sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    kaio_sys_setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

static void learn_maxmsg(struct kaio_key *k, int fd)
{
    long page = sysconf(_SC_PAGESIZE);
    int snd = 0, rcv = 0;
    size_t a, b;

    if (page <= 0)
        page = 4096;
    if (kaio_sys_getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, &snd) < 0 ||
        kaio_sys_getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, &rcv) < 0 || snd <= 0 || rcv <= 0)
        return;
    /* The kernel counts buffer space in whole pages. */
    a = (size_t)snd / (size_t)page * (size_t)page;
    b = (size_t)rcv / (size_t)page * (size_t)page;
    a = a < b ? a : b;
    /* The scatterlists of one operation come from the socket's option memory
     * (net.core.optmem_max, 20 KiB on 6.1): 8 MiB messages, which 7.2's
     * larger buffers admit, fail with ENOMEM. 256 KiB needs a few KiB. */
    k->maxmsg = a < KAIO_MAX_KERNEL_MSG ? a : KAIO_MAX_KERNEL_MSG;
}

static int ecb_tfm_open(struct kaio_key *k, struct kaio_tfm *t);

/* A new tfm socket for t, keyed as the one it replaces. */
static int tfm_reopen(struct kaio_key *k, struct kaio_tfm *t)
{
    unsigned s;

    if (t == k->ecb)
        return ecb_tfm_open(k, t);
    for (s = 0; s < KAIO_TAG_SLOTS; s++)
        if (k->t[s] == t)
            return tfm_open(k, t, s);
    return -EINVAL;
}

int kaio_key_op(struct kaio_key *k, struct kaio_tfm *t, unsigned idx)
{
    int fd, r;

    if (t->op[idx].fd >= 0 && sock_prove(k, &t->op[idx]) == 0)
        return t->op[idx].fd;
    /* accept() only on our own tfm: at its number a listening TCP socket
     * would hand us someone's connection to write the record to. */
    if (t->tfm.fd < 0 || sock_prove(k, &t->tfm) < 0) {
        if (t->err)
            return t->err;
        if ((r = tfm_reopen(k, t)) < 0)
            return r;
    }
    if (kaio_fd_reserve() < 0)
        return -EMFILE;
    fd = kaio_sys_accept(t->tfm.fd);
    if (fd < 0) {
        kaio_fd_release();
        return map_open_err(fd);
    }
    fd = kaio_sys_fd_raise(fd);
    r = sock_adopt(k, &t->op[idx], fd);
    if (r < 0)
        return r;
    raise_buffers(fd);
    if (k->maxmsg == 0)
        learn_maxmsg(k, fd);
    return fd;
}

void kaio_key_op_drop(struct kaio_tfm *t, unsigned idx)
{
    sock_drop(&t->op[idx]);
}

void kaio_key_drop_all(struct kaio_key *k)
{
    unsigned s, i;

    for (s = 0; s <= KAIO_TAG_SLOTS; s++) {
        struct kaio_tfm *t = tfm_at(k, s);

        if (t == NULL)
            continue;
        for (i = 0; i < KAIO_MAX_BATCH; i++)
            sock_drop(&t->op[i]);
        sock_drop(&t->tfm);
    }
}

void kaio_key_check_fork(struct kaio_key *k)
{
    unsigned gen = kaio_fork_generation();

    if (k->gen == gen)
        return;
    /* The inherited fds are the child's own copies: closing them leaves the
     * parent's sockets alone, and the child never sends on them. */
    kaio_key_drop_all(k);
    k->gen = gen;
    k->pid = getpid();
}

struct kaio_key *kaio_key_new(enum kaio_mode mode, const unsigned char *key, size_t keylen,
                              enum kaio_reason *reason, int *err)
{
    const struct kaio_caps *caps;
    struct kaio_key *k;
    enum kaio_reason rs = KAIO_R_NONE;
    int e = 0, r = 0;

    if ((unsigned)mode >= KAIO_NMODES || key == NULL ||
        (keylen != 16 && keylen != 24 && keylen != 32)) {
        rs = KAIO_R_KERNEL_ERROR;
        e = EINVAL;
        goto fail;
    }
    caps = kaio_probe();
    if (!caps->af_alg) {
        e = caps->af_alg_err;
        rs = e == EMFILE || e == ENFILE ? KAIO_R_FD_BUDGET : KAIO_R_NO_AF_ALG;
        goto fail;
    }
    if (!caps->mode[mode].available) {
        rs = caps->mode[mode].reason;
        e = caps->mode[mode].err;
        goto fail;
    }
    /* Room for the tfm and at least one op socket, or the key is useless. */
    if (kaio_fds_held() + 2 > kaio_fd_budget()) {
        rs = KAIO_R_FD_BUDGET;
        e = EMFILE;
        goto fail;
    }
    k = kaio_sys_calloc(1, sizeof(*k));
    if (k == NULL) {
        rs = KAIO_R_KERNEL_ERROR;
        e = ENOMEM;
        goto fail;
    }
    k->mode = mode;
    memcpy(k->key, key, keylen);
    k->keylen = keylen;
    k->opcap = caps->mode[mode].op_cap;
    k->pid = getpid();
    k->gen = kaio_fork_generation();
    pthread_mutex_init(&k->lock, NULL);
    /* Key it now, so a key the kernel refuses fails here, not per op. */
    if (kaio_key_tfm(k, mode == KAIO_GCM ? 16 : 0, &r) == NULL) {
        rs = r == -EMFILE ? KAIO_R_FD_BUDGET : r == -ENOENT ? KAIO_R_ALG_MISSING : KAIO_R_KERNEL_ERROR;
        e = -r;
        kaio_key_free(k);
        goto fail;
    }
    return k;
fail:
    if (reason)
        *reason = rs;
    if (err)
        *err = e;
    return NULL;
}

void kaio_key_free(struct kaio_key *k)
{
    unsigned s;

    if (k == NULL)
        return;
    /* A job paused on this key will not come back (its owner is being
     * freed): the kernel must be done with its reads first. */
    if (k->paused != NULL)
        kaio_pending_abandon(k->paused);
    if (k->gen != kaio_fork_generation())
        kaio_key_check_fork(k);
    kaio_key_drop_all(k);
    for (s = 0; s < KAIO_TAG_SLOTS; s++)
        free(k->t[s]);
    free(k->ecb);
    if (k->ks != NULL) {
        explicit_bzero(k->ks, k->ks_cap);
        free(k->ks);
    }
    explicit_bzero(k->key, sizeof(k->key));
    pthread_mutex_destroy(&k->lock);
    free(k);
}

void kaio_key_sockets(const struct kaio_key *k, unsigned *tfms, unsigned *ops)
{
    unsigned s, i, nt = 0, no = 0;

    for (s = 0; s <= KAIO_TAG_SLOTS; s++) {
        const struct kaio_tfm *t = tfm_at(k, s);

        if (t == NULL)
            continue;
        nt += t->tfm.fd >= 0;
        for (i = 0; i < KAIO_MAX_BATCH; i++)
            no += t->op[i].fd >= 0;
    }
    *tfms = nt;
    *ops = no;
}

size_t kaio_key_max_msg(const struct kaio_key *k)
{
    /* A device driver's own cap counts too. */
    return k->maxmsg && k->opcap && k->opcap < k->maxmsg ? k->opcap : k->maxmsg;
}

/* ---------------- ecb(aes) for CTR coalescing ---------------- */

static int ecb_tfm_open(struct kaio_key *k, struct kaio_tfm *t)
{
    struct sockaddr_alg sa;
    int fd, r;

    if (kaio_fd_reserve() < 0)
        return -EMFILE;
    memset(&sa, 0, sizeof(sa));
    sa.salg_family = AF_ALG;
    strcpy((char *)sa.salg_type, "skcipher");
    strcpy((char *)sa.salg_name, "ecb(aes)");
    fd = kaio_sys_socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        kaio_fd_release();
        return map_open_err(fd);
    }
    fd = kaio_sys_fd_raise(fd);
    r = kaio_sys_bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r == 0)
        r = kaio_sys_setsockopt(fd, SOL_ALG, ALG_SET_KEY, k->key, (socklen_t)k->keylen);
    if (r < 0) {
        kaio_sys_close(fd);
        kaio_fd_release();
        /* A kernel without ecb(aes), or refusing the key, stays that way. */
        if (r != -EMFILE && r != -ENFILE && r != -ENOMEM && r != -EINTR)
            t->err = r;
        return r;
    }
    return sock_adopt(k, &t->tfm, fd);
}

int kaio_key_ecb(struct kaio_key *k)
{
    struct kaio_tfm *t = k->ecb;
    unsigned i;
    int r;

    if (t == NULL) {
        t = kaio_sys_calloc(1, sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        t->tfm.fd = -1;
        for (i = 0; i < KAIO_MAX_BATCH; i++)
            t->op[i].fd = -1;
        k->ecb = t;
    }
    if (t->err)
        return t->err;
    r = kaio_key_op(k, t, 0);
    if (r < 0 && r != -EMFILE)
        sock_drop(&t->tfm); /* closed under us, or broken: reopen next time */
    return r;
}

void kaio_key_ecb_drop(struct kaio_key *k)
{
    if (k->ecb != NULL)
        sock_drop(&k->ecb->op[0]);
}

unsigned char *kaio_key_scratch(struct kaio_key *k, size_t len)
{
    unsigned char *p;

    if (len <= k->ks_cap)
        return k->ks;
    p = kaio_sys_malloc(len);
    if (p == NULL)
        return NULL;
    if (k->ks != NULL) {
        explicit_bzero(k->ks, k->ks_cap);
        free(k->ks);
    }
    k->ks = p;
    k->ks_cap = len;
    return p;
}
