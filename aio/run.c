/*
 * The batch runner: n independent ops -> n sendmsg on n op sockets, then one
 * io_submit of n reads reaped with io_getevents (AIO path), or sendmsg + read
 * per op (sync path). Records larger than one kernel operation may carry are
 * cut into chunks whose IVs are chained here in user space, one chunk per
 * record per round ("wave"). Inside cooperative jobs on a device, the waves
 * of the thread's paused jobs share one io_submit (the thread's queue).
 */
#include "key.h"
#include "sys.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- the thread's AIO context ---------------- */

/* Reads a thread's context holds at once (submitted and queued). */
#define AIO_SLOTS (KAIO_MAX_BATCH * 4)

struct job;

/*
 * One context per thread, not per key: fs.aio-max-nr bounds all contexts of
 * the system, and a thread runs one batch at a time.
 */
struct aio_tls {
    io_context_t ctx;
    unsigned gen;        /* fork generation the context was made in */
    int state;           /* 0 none, 1 ready, -1 failed */
    int err;
    unsigned retry_in;   /* batches until a failed io_setup is tried again */
    /* Batches of paused jobs share the context with the running one. */
    size_t outstanding;  /* reads submitted and not reaped, all batches */
    unsigned epoch;      /* bumped when the context is torn down under them */
    unsigned foreign;    /* batches holding completions another batch reaped */
    /* Prepared reads of paused jobs, not submitted yet: the next flush sends
     * them all in one io_submit. */
    struct job *q[AIO_SLOTS];
    size_t nq;
    struct iocb *cbs[AIO_SLOTS]; /* flush()'s argument: kept off a job's small stack */
};

static __thread struct aio_tls tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_release(struct aio_tls *a, int destroy)
{
    if (a->state == 1 && destroy)
        kaio_sys_io_destroy(a->ctx);
    a->ctx = 0;
    a->state = 0;
}

static void tls_exit(void *p)
{
    struct aio_tls *a = p;

    if (a->gen == kaio_fork_generation())
        tls_release(a, 1);
}

static int tls_key_made;

static void tls_key_init(void)
{
    tls_key_made = pthread_key_create(&tls_key, tls_exit) == 0;
}

/* The provider module can be unloaded: no thread may run tls_exit after. */
__attribute__((destructor)) static void tls_key_unload(void)
{
    if (tls_key_made)
        pthread_key_delete(tls_key);
}

/* The calling thread's context, or NULL (AIO unusable now: run sync). */
static struct aio_tls *aio_ctx(void)
{
    unsigned gen = kaio_fork_generation();
    int r;

    if (tls.gen != gen) {
        /* A context belongs to the mm that made it: a child needs its own
         * (the parent's reads are not the child's to reap). */
        if (tls.gen != 0)
            tls_release(&tls, 0);
        kaio_count(KAIO_C_AIO_READS_ENDED, tls.outstanding);
        memset(&tls, 0, sizeof(tls));
        tls.gen = gen;
    }
    if (tls.state == 1)
        return &tls;
    if (tls.state == -1) {
        /* ENOSYS/EPERM do not go away; EAGAIN (aio-max-nr) may. */
        if (tls.err != EAGAIN || --tls.retry_in > 0)
            return NULL;
    }
    pthread_once(&tls_once, tls_key_init);
    tls.ctx = 0;
    /* Room for the reads of a few paused jobs next to the running batch. */
    r = kaio_sys_io_setup(AIO_SLOTS, &tls.ctx);
    if (r < 0) {
        tls.state = -1;
        tls.err = -r;
        tls.retry_in = 64;
        return NULL;
    }
    tls.state = 1;
    if (tls_key_made)
        pthread_setspecific(tls_key, &tls);
    return &tls;
}

static void unqueue_all(struct aio_tls *a);

/* After an unrecoverable io_getevents failure: io_destroy waits for every
 * outstanding request, so no request outlives the buffers it points at. */
static void aio_ctx_reset(void)
{
    /* Queued reads never reached the kernel: their jobs run them again. */
    unqueue_all(&tls);
    tls_release(&tls, 1);
    /* Batches that hold reaped results keep them (tls.foreign stays). */
    kaio_count(KAIO_C_AIO_READS_ENDED, tls.outstanding);
    tls.outstanding = 0;
    tls.epoch++;
}

/* ---------------- a job owner's eventfd ---------------- */

int kaio_job_fd_get(struct kaio_job_fd *f)
{
    unsigned gen = kaio_fork_generation();
    int r;

    if (f->fd >= 0 && f->gen == gen)
        return f->fd;
    if (f->fd < 0) {
        /* Not raised above KAIO_FD_FLOOR: servers index tables by it. */
        if ((r = kaio_sys_eventfd()) < 0)
            return r;
        f->fd = r;
    } else if ((r = kaio_sys_eventfd_renew(f->fd)) < 0) {
        return r;
    }
    f->gen = gen;
    return f->fd;
}

void kaio_job_fd_close(struct kaio_job_fd *f)
{
    if (f->fd >= 0)
        kaio_sys_close(f->fd);
    f->fd = -1;
}

/* ---------------- jobs ---------------- */

#define CBUF_SIZE (CMSG_SPACE(sizeof(uint32_t)) * 2 + CMSG_SPACE(sizeof(struct af_alg_iv) + 16))

struct job {
    struct kaio_op *op;
    struct kaio_tfm *t;
    unsigned slot;           /* tfm slot (GCM: tag length) */
    int sock;                /* op socket index this wave, -1 none */
    int fd;
    int pending;             /* still has work */
    int in_wave;
    int sent;
    int via_aio;             /* some of it ran through io_submit */
    int shared;              /* it ran inside one coalesced kernel operation */
    int as_encrypt;          /* GCM decrypt of no data: encrypt, compare tags */
    unsigned lost;           /* times its socket turned out closed under us */
    unsigned retries;        /* reads that came back EINTR/EAGAIN/EBUSY */
    size_t off;              /* bytes done */
    size_t chunk;            /* bytes this wave */
    size_t rxlen;            /* expected read result */
    unsigned char iv[16];    /* IV (counter block) of the next chunk */
    unsigned char next[16];  /* CBC decrypt: IV after this chunk, saved from input */
    unsigned char tag[16];   /* as_encrypt: the computed tag */
    struct iovec tx[3], rx[3];
    struct iovec orig[3];    /* rx before it was pointed at the batch's bounce buffer */
    int bounced;
    int ntx, nrx;
    struct iocb cb;
    struct batch *b;         /* the batch it belongs to (completions are routed here) */
    long res;                /* a reaped read's result, not yet handled */
    int reaped;
    int queued;              /* its read waits in the thread's queue */
    int unsent;              /* its own batch's flush could not submit it */
    int inject;              /* test fault for this AIO read, 0 none */
    int resfd;               /* the eventfd its read names (IOCB_FLAG_RESFD), -1 none */
    union {
        char buf[CBUF_SIZE];
        struct cmsghdr align;
    } cmsg;
};

struct batch {
    struct kaio_key *k;
    struct job *jobs;
    size_t n;
    unsigned char *aad_sink; /* the kernel copies AAD into RX: received here */
    int aad_heap;            /* aad_sink was malloc'd */
    int lost;                /* an fd was found closed under us this wave */
    const struct kaio_wait *wait; /* pause instead of blocking (NULL: block) */
    int efd;                 /* the job's eventfd (wait->fd) this wave, -1 none */
    struct aio_tls *a;       /* the context its reads went to */
    unsigned epoch;          /* a's epoch when they went */
    size_t outstanding;      /* its reads not handled yet (reaped or not) */
    size_t nready;           /* of those, reaped (by anyone) */
    size_t queued;           /* its reads in the thread's queue, not submitted */
    int foreign;             /* counted in a->foreign */
    int abandoned;
    int jobs_heap;           /* jobs was malloc'd (a batch that may pause) */
    unsigned gen;            /* fork generation its reads went out in */
    int forked;              /* resumed in a forked child: its key and context are the parent's */
    unsigned char *bounce;   /* where the kernel writes while the job may pause */
    int keywait;             /* only waits for its key (key_take): holds nothing */
};

static void ctr_add(unsigned char ctr[16], size_t blocks)
{
    int i;
    uint64_t carry = blocks;

    for (i = 15; i >= 0 && carry; i--) {
        carry += ctr[i];
        ctr[i] = (unsigned char)carry;
        carry >>= 8;
    }
}

static int tags_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char d = 0;
    size_t i;

    for (i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static void not_run(struct job *j, enum kaio_reason r, int err)
{
    j->op->status = KAIO_NOT_RUN;
    j->op->reason = r;
    j->op->err = err;
    j->pending = 0;
}

static void finish(struct job *j, int status)
{
    j->op->status = status;
    j->pending = 0;
    kaio_count(j->shared ? KAIO_C_OPS_COALESCED : j->via_aio ? KAIO_C_OPS_AIO : KAIO_C_OPS_SYNC, 1);
    if (status == 0)
        kaio_count(KAIO_C_BYTES_KERNEL, j->op->len);
}

static int is_lost(int err)
{
    return err == EBADF || err == ENOTSOCK;
}

/* Bytes one kernel operation may carry for this key. */
static size_t max_msg(const struct kaio_key *k)
{
    size_t lim = k->maxmsg ? k->maxmsg : 65536, cap = kaio_chunk_limit();

    if (k->opcap && k->opcap < lim)
        lim = k->opcap;
    return cap && cap < lim ? cap : lim;
}

/* ---------------- one wave ---------------- */

/* Picks an op socket of the job's tfm not used yet in this wave. */
static int take_socket(struct batch *b, struct job *j, uint32_t used[KAIO_TAG_SLOTS])
{
    struct kaio_tfm *t;
    unsigned i;
    int err = 0, fd, any = 0;

    t = kaio_key_tfm(b->k, j->slot, &err);
    if (t == NULL) {
        if (err == -EINVAL && b->k->mode == KAIO_GCM)
            not_run(j, KAIO_R_TAG_LENGTH, EINVAL); /* ALG_SET_AEAD_AUTHSIZE refused */
        else
            not_run(j, err == -EMFILE ? KAIO_R_FD_BUDGET : b->k->lost ? KAIO_R_FD_LOST : KAIO_R_KERNEL_ERROR,
                    -err);
        return -1;
    }
    j->t = t;
    /* Sockets already open first: accepting costs a syscall and an fd. */
    for (i = 0; i < KAIO_MAX_BATCH; i++) {
        if (t->op[i].fd >= 0)
            any = 1;
        if (t->op[i].fd >= 0 && !(used[j->slot] & (1u << i)))
            break;
    }
    if (i == KAIO_MAX_BATCH)
        for (i = 0; i < KAIO_MAX_BATCH; i++)
            if (t->op[i].fd < 0 && !(used[j->slot] & (1u << i)))
                break;
    if (i == KAIO_MAX_BATCH)
        return 1; /* all busy this wave: next wave */
    /* Proves an open socket ours (or replaces it), or accepts a new one. */
    fd = kaio_key_op(b->k, t, i);
    if (fd < 0) {
        if (fd == -EMFILE && any)
            return 1; /* budget spent: run on the sockets we have, in rounds */
        if (is_lost(-fd) || fd == -EINVAL) {
            /* the tfm was closed between its proof and accept() */
            b->lost = 1;
            j->lost++;
            return 1;
        }
        not_run(j, fd == -EMFILE ? KAIO_R_FD_BUDGET : b->k->lost ? KAIO_R_FD_LOST : KAIO_R_KERNEL_ERROR,
                -fd);
        return -1;
    }
    used[j->slot] |= 1u << i;
    j->sock = (int)i;
    j->fd = fd;
    return 0;
}

static void add_cmsg(struct msghdr *m, struct cmsghdr **c, size_t *space, int type,
                     const void *data, size_t len)
{
    *c = *c ? CMSG_NXTHDR(m, *c) : CMSG_FIRSTHDR(m);
    (*c)->cmsg_level = SOL_ALG;
    (*c)->cmsg_type = type;
    (*c)->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(*c), data, len);
    *space += CMSG_SPACE(len);
}

/* Lays out this wave's TX/RX for a job; 0, or -1 when it cannot run. */
static int prepare(struct batch *b, struct job *j)
{
    struct kaio_op *op = j->op;
    size_t lim = max_msg(b->k);

    j->ntx = j->nrx = 0;
    if (b->k->mode != KAIO_GCM) {
        size_t left = op->len - j->off;

        lim -= lim % KAIO_BLOCK;
        j->chunk = left < lim ? left : lim;
        j->tx[j->ntx++] = (struct iovec){ (void *)(op->in + j->off), j->chunk };
        j->rx[j->nrx++] = (struct iovec){ op->out + j->off, j->chunk };
        j->rxlen = j->chunk;
        /* In-place decryption overwrites the block the next chunk chains from. */
        if (b->k->mode == KAIO_CBC && !op->encrypt)
            memcpy(j->next, op->in + j->off + j->chunk - KAIO_BLOCK, KAIO_BLOCK);
        return 0;
    }
    if (op->aadlen + op->len + op->taglen > lim) {
        not_run(j, KAIO_R_TOO_LARGE, EMSGSIZE);
        return -1;
    }
    if (op->aadlen) {
        j->tx[j->ntx++] = (struct iovec){ (void *)op->aad, op->aadlen };
        j->rx[j->nrx++] = (struct iovec){ b->aad_sink, op->aadlen };
    }
    if (op->len) {
        j->tx[j->ntx++] = (struct iovec){ (void *)op->in, op->len };
        j->rx[j->nrx++] = (struct iovec){ op->out, op->len };
    }
    if (op->encrypt || j->as_encrypt)
        j->rx[j->nrx++] = (struct iovec){ j->as_encrypt ? j->tag : op->tag, op->taglen };
    else
        j->tx[j->ntx++] = (struct iovec){ (void *)op->tag, op->taglen };
    j->rxlen = op->aadlen + op->len + (op->encrypt || j->as_encrypt ? op->taglen : 0);
    j->chunk = op->len;
    return 0;
}

static void fail(struct batch *b, struct job *j, int err)
{
    if (is_lost(err)) {
        /* Closed under us (a daemon closing all fds): rebuild, then retry. */
        b->lost = 1;
        j->lost++;
        return;
    }
    /* The socket's kernel state is unknown now: never reuse it. */
    kaio_key_op_drop(j->t, (unsigned)j->sock);
    not_run(j, KAIO_R_KERNEL_ERROR, err);
}

static int send_iov(struct batch *b, struct job *j, struct iovec *tx, int ntx)
{
    struct kaio_op *op = j->op;
    struct msghdr m;
    struct cmsghdr *c = NULL;
    union {
        struct af_alg_iv h;
        unsigned char raw[sizeof(struct af_alg_iv) + 16];
    } iv;
    uint32_t opv = op->encrypt || j->as_encrypt ? ALG_OP_ENCRYPT : ALG_OP_DECRYPT;
    size_t ivlen = b->k->mode == KAIO_GCM ? KAIO_GCM_KERNEL_IVLEN : KAIO_BLOCK, total = 0, space = 0;
    unsigned attempt;
    int i;

    memset(&m, 0, sizeof(m));
    memset(&j->cmsg, 0, sizeof(j->cmsg));
    m.msg_control = j->cmsg.buf;
    m.msg_controllen = sizeof(j->cmsg.buf);
    m.msg_iov = tx;
    m.msg_iovlen = (size_t)ntx;
    iv.h.ivlen = (uint32_t)ivlen;
    memcpy(iv.h.iv, j->iv, ivlen);
    add_cmsg(&m, &c, &space, ALG_SET_OP, &opv, sizeof(opv));
    add_cmsg(&m, &c, &space, ALG_SET_IV, &iv, sizeof(iv.h) + ivlen);
    if (b->k->mode == KAIO_GCM) {
        uint32_t as = (uint32_t)op->aadlen;

        add_cmsg(&m, &c, &space, ALG_SET_AEAD_ASSOCLEN, &as, sizeof(as));
    }
    m.msg_controllen = space;
    for (i = 0; i < ntx; i++)
        total += tx[i].iov_len;
    /* MSG_DONTWAIT: a full send buffer must fail, not hang the caller. */
    for (attempt = 1;; attempt++) {
        ssize_t r = kaio_sys_sendmsg(j->fd, &m, MSG_DONTWAIT);

        if (r == (ssize_t)total)
            return 0;
        if (r >= 0) {
            /* Part of it is queued: this socket cannot be reused. */
            fail(b, j, EMSGSIZE);
            return -1;
        }
        if ((r == -EAGAIN || r == -EBUSY || r == -EINTR) && attempt < KAIO_RETRIES) {
            if (r != -EINTR)
                kaio_sys_backoff(attempt);
            continue;
        }
        fail(b, j, (int)-r);
        return -1;
    }
}

static int send_one(struct batch *b, struct job *j)
{
    return send_iov(b, j, j->tx, j->ntx);
}

/* A chunk came back with result res (bytes, or -errno). */
static void complete(struct batch *b, struct job *j, long res)
{
    struct kaio_op *op = j->op;

    if (res < 0) {
        if (res == -EBADMSG && b->k->mode == KAIO_GCM && !op->encrypt) {
            kaio_count(KAIO_C_KERNEL_OPS, 1);
            kaio_count(KAIO_C_TAG_FAILURES, 1);
            finish(j, KAIO_EBADMSG);
            return;
        }
        if (res == -EINTR || res == -EAGAIN || res == -EBUSY) {
            /* The request did not run: the data may still be queued, so the
             * socket is dropped and the job runs again on another one. */
            kaio_key_op_drop(j->t, (unsigned)j->sock);
            if (++j->retries >= KAIO_RETRIES)
                not_run(j, KAIO_R_KERNEL_ERROR, (int)-res);
            return;
        }
        fail(b, j, (int)-res);
        return;
    }
    if ((size_t)res != j->rxlen) {
        fail(b, j, EIO);
        return;
    }
    kaio_count(KAIO_C_KERNEL_OPS, 1);
    if (b->k->mode == KAIO_GCM) {
        if (j->as_encrypt && !tags_equal(j->tag, op->tag, op->taglen)) {
            kaio_count(KAIO_C_TAG_FAILURES, 1);
            finish(j, KAIO_EBADMSG);
            return;
        }
        finish(j, 0);
        return;
    }
    if (b->k->mode == KAIO_CBC && op->encrypt)
        memcpy(j->iv, op->out + j->off + j->chunk - KAIO_BLOCK, KAIO_BLOCK);
    else if (b->k->mode == KAIO_CBC)
        memcpy(j->iv, j->next, KAIO_BLOCK);
    else
        ctr_add(j->iv, j->chunk / KAIO_BLOCK);
    j->off += j->chunk;
    if (j->off == op->len)
        finish(j, 0);
}

static void recv_sync(struct batch *b, struct job *j)
{
    struct msghdr m;
    unsigned attempt;
    ssize_t r;

    memset(&m, 0, sizeof(m));
    m.msg_iov = j->rx;
    m.msg_iovlen = (size_t)j->nrx;
    /* recvmsg rather than read: read() of 0 bytes never reaches the socket. */
    for (attempt = 1;; attempt++) {
        r = kaio_sys_recvmsg(j->fd, &m, 0);
        if (r != -EINTR || attempt >= KAIO_RETRIES)
            break;
    }
    complete(b, j, (long)r);
}

/*
 * Reaps completions of the thread's context: at least min_nr (0: only those
 * already there) and hands each to its job. Batches of paused jobs share the
 * context, so one batch reaps another's too; the eventfd is kept readable
 * while such results wait, so the paused job gets resumed. A batch that may
 * pause resets the eventfd before looking, so a completion arriving after
 * the look signals it again. Returns the number reaped or -errno.
 */
static int reap(struct aio_tls *a, struct batch *cur, long min_nr)
{
    struct io_event ev[KAIO_MAX_BATCH];
    struct timespec zero = { 0, 0 };
    int r, i;

    if (cur->wait != NULL && cur->efd >= 0)
        kaio_sys_eventfd_read(cur->efd);
    if (min_nr == 0 && kaio_sys_peek_fault() > 0) {
        /* Test fault: the completions show up just after this look. */
        if (cur->efd >= 0)
            kaio_sys_eventfd_write(cur->efd);
        return 0;
    }
    r = kaio_sys_io_getevents(a->ctx, min_nr, KAIO_MAX_BATCH, ev, min_nr ? NULL : &zero);
    for (i = 0; i < r; i++) {
        struct job *j = ev[i].data;
        struct batch *o = j->b;

        j->cb.data = NULL;
        j->res = j->inject ? -j->inject : (long)ev[i].res;
        j->reaped = 1;
        if (o->nready++ == 0 && o != cur && !o->foreign) {
            o->foreign = 1;
            a->foreign++;
        }
        a->outstanding--;
    }
    /* A paused job whose result another batch reaped needs no signal here:
     * the kernel signalled its own eventfd when the read completed (or the
     * job made it readable itself when its reads name none). */
    if (r > 0)
        kaio_count(KAIO_C_AIO_READS_ENDED, (uint64_t)r);
    return r;
}

/*
 * While a job may pause, its owner may free the ops' buffers before it gives
 * the job up (libssl frees a connection's record buffers before its wait
 * ctx): the kernel then writes into the batch's own buffer instead, and the
 * result is copied out when the read is handled. Without that buffer the
 * batch blocks rather than pauses.
 */
static void bounce_wave(struct batch *b, struct job **w, size_t m)
{
    size_t i, total = 0, off = 0;
    int x;

    for (i = 0; i < m; i++)
        total += w[i]->rxlen;
    if (total == 0 || (b->bounce = kaio_sys_malloc(total)) == NULL) {
        b->wait = NULL;
        return;
    }
    for (i = 0; i < m; i++) {
        struct job *j = w[i];

        for (x = 0; x < j->nrx; x++) {
            j->orig[x] = j->rx[x];
            j->rx[x].iov_base = b->bounce + off;
            off += j->rx[x].iov_len;
        }
        j->bounced = 1;
    }
}

/* Points the job's RX back at the ops' buffers, with res bytes read (< 0: none). */
static void unbounce(struct job *j, long res)
{
    size_t left = res > 0 ? (size_t)res : 0, c;
    int x;

    if (!j->bounced)
        return;
    for (x = 0; x < j->nrx; x++) {
        c = left < j->orig[x].iov_len ? left : j->orig[x].iov_len;
        if (c > 0)
            memcpy(j->orig[x].iov_base, j->rx[x].iov_base, c);
        left -= c;
        j->rx[x] = j->orig[x];
    }
    j->bounced = 0;
}

/* Handles the batch's reaped reads (its own or routed to it). */
static void collect(struct batch *b, struct job **w, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (w[i]->reaped) {
            w[i]->reaped = 0;
            b->nready--;
            b->outstanding--;
            unbounce(w[i], w[i]->res);
            complete(b, w[i], w[i]->res);
        }
    if (b->foreign) {
        b->foreign = 0;
        b->a->foreign--;
    }
}

/* The reads of the batch that are still out will never be reaped (the
 * context is gone; io_destroy waited for them): they failed. */
static void lose_outstanding(struct batch *b, struct job **w, size_t n, int err)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (w[i]->cb.data != NULL && !w[i]->reaped) {
            w[i]->cb.data = NULL;
            unbounce(w[i], -1);
            fail(b, w[i], err);
        }
    b->outstanding = b->nready;
}

/*
 * Resumed in a forked child: the unreaped reads went to the parent's context
 * (or wait in the parent's queue, which only the parent submits) and the
 * kernel writes the parent's copy of the bounce buffer. The ops'
 * buffers hold their input for those chunks (nothing was copied out yet), so
 * the chunks run again on the child's own sockets; reads reaped before the
 * fork are whole in the child's copy and handled as usual.
 */
static void redo_forked(struct batch *b, struct job **w, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((w[i]->cb.data != NULL && !w[i]->reaped) || w[i]->unsent) {
            /* Submitted, queued (the child drops the parent's queue) or
             * left for a synchronous read of the parent's socket. */
            w[i]->cb.data = NULL;
            w[i]->queued = 0;
            w[i]->unsent = 0;
            unbounce(w[i], -1);
            kaio_count(KAIO_C_ASYNC_FORK_REDONE, 1);
        }
    b->outstanding = b->nready;
    b->queued = 0;
    b->forked = 1;
    b->wait = NULL;
    b->foreign = 0; /* the child's context starts afresh (aio_ctx) */
    collect(b, w, n);
}

/* Pauses b's job on fd while its key names b as its paused batch (a job
 * that cannot pause blocks from then on). Returns 1 when the job resumed in
 * a forked child, where redo_forked ran its chunks again. */
static int pause_batch(struct batch *b, struct job **w, size_t m, int fd)
{
    b->k->paused = (struct kaio_pending *)b;
    if (b->wait->pause(b->wait->arg, fd, (struct kaio_pending *)b) != 0)
        b->wait = NULL;
    b->k->paused = NULL;
    if (b->gen == kaio_fork_generation())
        return 0;
    redo_forked(b, w, m);
    return 1;
}

/* ---------------- the thread's queue of reads ---------------- */

/* A queued read taken out without reaching the kernel goes back to its
 * batch as a read that did not run: complete() drops the socket (its data
 * is still there) and the job runs again in the next wave. */
static void route_unsent(struct aio_tls *a, struct job *j)
{
    struct batch *o = j->b;

    j->queued = 0;
    j->cb.data = NULL;
    j->res = -EAGAIN;
    j->reaped = 1;
    o->queued--;
    o->outstanding++;
    if (o->nready++ == 0 && !o->foreign) {
        o->foreign = 1;
        a->foreign++;
    }
    /* No completion will signal its job: the job must run to see it. */
    if (o->efd >= 0)
        kaio_sys_eventfd_write(o->efd);
}

static void unqueue_all(struct aio_tls *a)
{
    size_t i;

    for (i = 0; i < a->nq; i++)
        route_unsent(a, a->q[i]);
    a->nq = 0;
}

/* One io_submit of every queued read of the thread, whichever paused job
 * queued it (resubmitting after a short one). Reads of cur that did not go
 * are marked unsent (its caller reads them synchronously: their data is on
 * the socket); other batches get theirs back as not run. Returns 1 when the
 * context cannot take socket reads at all. */
static int flush(struct aio_tls *a, struct batch *cur)
{
    struct iocb **cbs = a->cbs;
    size_t n = a->nq, i, done = 0;
    unsigned attempt = 0;
    int fatal = 0;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        cbs[i] = &a->q[i]->cb;
    while (done < n) {
        int r = kaio_sys_io_submit(a->ctx, (long)(n - done), cbs + done);

        if (r > 0) {
            done += (size_t)r;
            attempt = 0;
            continue;
        }
        if ((r == 0 || r == -EAGAIN || r == -EBUSY || r == -EINTR) && ++attempt < KAIO_RETRIES) {
            if (r != -EINTR)
                kaio_sys_backoff(attempt);
            continue;
        }
        /* EINVAL/ENOSYS/...: this context cannot take socket reads. */
        if (r != 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
            fatal = 1;
        break;
    }
    for (i = 0; i < n; i++) {
        struct job *j = a->q[i];
        struct batch *o = j->b;

        if (i < done) {
            j->queued = 0;
            j->via_aio = 1;
            o->queued--;
            o->outstanding++;
            a->outstanding++;
        } else if (o == cur) {
            j->queued = 0;
            j->cb.data = NULL;
            j->unsent = 1;
            o->queued--;
        } else {
            route_unsent(a, j);
        }
    }
    a->nq = 0;
    /* Submitted and not reaped yet: in flight together, with the reads of
     * this thread's paused jobs. */
    if (done > 0)
        kaio_note_inflight(a->outstanding);
    kaio_count(KAIO_C_AIO_READS, done);
    return fatal;
}

/* Whether a wave's reads wait in the queue for other jobs' (see
 * kaio_set_async_batch): only a job that can pause, and only for a device,
 * whose completions come later anyway; a CPU driver completes inside
 * io_submit and would only lose a round of the loop. */
static int hold_for_others(const struct batch *b, size_t m)
{
    return m > 0 && b->wait != NULL && kaio_async_batch()
           && kaio_probe()->mode[b->k->mode].drv_class == KAIO_DRV_DEVICE;
}

/* The wave's reads go to the thread's queue and the queue to the kernel in
 * one io_submit: at once, or, inside a job on a device, after the job paused
 * once so the thread's other jobs add theirs; then reap. Returns how many
 * went through AIO; reads that could not be submitted are done
 * synchronously (their data is already queued on the socket). */
static size_t aio_wave(struct batch *b, struct aio_tls *a, struct job **w, size_t m)
{
    size_t i, unsent = 0;
    int fatal = 0, was_empty;
    size_t k = 0;

    if (b->wait != NULL)
        bounce_wave(b, w, m);
    /* The job's eventfd, which its reads name so that their completion
     * wakes this job and no other: made now when the job will pause before
     * submitting (held for others), else used if the job has one. */
    b->efd = b->wait != NULL ? b->wait->fd(b->wait->arg, hold_for_others(b, m)) : -1;
    for (i = 0; i < m; i++) {
        struct job *j = w[i];

        j->inject = kaio_sys_read_fault();
        if (j->inject && kaio_sys_read_fault_before(j->inject)) {
            unbounce(j, -1);
            complete(b, j, -j->inject); /* as if this read never ran */
            continue;
        }
        w[k++] = j;
        if (j->nrx == 1)
            io_prep_pread(&j->cb, j->fd, j->rx[0].iov_base, j->rx[0].iov_len, 0);
        else
            io_prep_preadv(&j->cb, j->fd, j->rx, j->nrx, 0);
        j->resfd = b->efd;
        if (b->efd >= 0)
            io_set_eventfd(&j->cb, b->efd);
        j->cb.data = j;
        j->b = b;
        j->reaped = 0;
        j->unsent = 0;
    }
    m = k;
    if (a->nq + m > AIO_SLOTS)
        fatal |= flush(a, b); /* no room left: what waits goes now */
    b->a = a;
    b->epoch = a->epoch;
    b->gen = a->gen;
    was_empty = a->nq == 0;
    for (i = 0; i < m; i++) {
        w[i]->queued = 1;
        a->q[a->nq++] = w[i];
    }
    b->queued = m;
    if (hold_for_others(b, m) && b->efd >= 0) {
        /* The job that starts the queue makes its own eventfd readable: the
         * loop comes back to it in its next round, and it (or any job of
         * the thread that runs first) submits every queued read; the
         * others' eventfds turn readable when their reads complete. */
        if (was_empty)
            kaio_sys_eventfd_write(b->efd);
        /* In a forked child the queue is the parent's: never submitted there. */
        if (pause_batch(b, w, m, b->efd))
            goto out;
    }
    if (b->queued > 0)
        fatal |= flush(a, b);
    for (i = 0; i < m; i++) {
        if (w[i]->queued) {
            /* Not taken by the flush (it takes the whole queue): read
             * synchronously rather than left behind. */
            w[i]->queued = 0;
            w[i]->cb.data = NULL;
            w[i]->unsent = 1;
        }
        unsent += w[i]->unsent;
    }
    b->queued = 0;
    while (b->outstanding > 0) {
        long min_nr;
        int r;

        if (b->nready > 0) {
            collect(b, w, m);
            continue;
        }
        if (b->epoch != a->epoch) {
            lose_outstanding(b, w, m, EIO);
            collect(b, w, m);
            break;
        }
        /* Alone on the context: wait for all of ours at once (one call). */
        min_nr = b->wait != NULL ? 0 : a->outstanding == b->outstanding ? (long)b->outstanding : 1;
        r = reap(a, b, min_nr);
        if (r == -EINTR)
            continue;
        if (r < 0 || (r == 0 && min_nr > 0)) {
            /* Cannot reap: wait the requests out, their results are lost. */
            aio_ctx_reset();
            lose_outstanding(b, w, m, r < 0 ? -r : EIO);
            collect(b, w, m);
            break;
        }
        if (r == 0 && b->nready == 0) {
            /* Not there yet: let the job's owner run others meanwhile. */
            int fd = b->efd >= 0 ? b->efd : b->wait->fd(b->wait->arg, 1);

            if (fd < 0) {
                b->wait = NULL; /* no eventfd: block */
                continue;
            }
            b->efd = fd;
            /* Reads that went out naming no eventfd of this job (it had
             * none yet) will not wake it: it looks again next round. */
            for (i = 0; i < m; i++)
                if (w[i]->cb.data != NULL && !w[i]->reaped && w[i]->resfd != fd) {
                    kaio_sys_eventfd_write(fd);
                    break;
                }
            if (pause_batch(b, w, m, fd))
                break;
        }
    }
    if (b->forked)
        goto out;
    if (fatal) {
        aio_ctx_reset();
        tls.state = -1;
        tls.err = EINVAL;
    }
    if (unsent > 0) {
        kaio_count_fallback(KAIO_R_AIO_UNAVAILABLE, unsent);
        for (i = 0; i < m; i++)
            if (w[i]->unsent) {
                w[i]->unsent = 0;
                unbounce(w[i], -1);
                recv_sync(b, w[i]);
            }
    }
out:
    free(b->bounce);
    b->bounce = NULL;
    return m - unsent;
}

/* ---------------- CBC decryption as one kernel operation ---------------- */

/*
 * Decrypting C_1..C_n chained (IV_1 first) gives every block right except
 * the first of records 2..n, which came out as D(C_i[0]) xor lastC_{i-1}
 * instead of D(C_i[0]) xor IV_i: one XOR each repairs it. Runs groups that
 * fit one kernel operation; what it cannot run stays pending for the waves.
 */
static void coalesce_cbc_decrypt(struct batch *b, int *ran)
{
    struct kaio_key *k = b->k;
    size_t lim = max_msg(k), i = 0;
    struct kaio_tfm *t;
    int err = 0, fd;

    lim -= lim % KAIO_BLOCK;
    while (i < b->n) {
        struct iovec tx[KAIO_MAX_BATCH], rx[KAIO_MAX_BATCH];
        unsigned char prev[KAIO_MAX_BATCH][KAIO_BLOCK];
        struct job *g[KAIO_MAX_BATCH], *j;
        size_t m = 0, total = 0, x;
        struct msghdr msg;
        ssize_t r;

        for (; i < b->n; i++) {
            j = &b->jobs[i];
            if (!j->pending || j->op->encrypt || j->off != 0)
                continue;
            if (j->op->len > lim || total + j->op->len > lim)
                break;
            /* In place overwrites it: keep each record's last ciphertext block. */
            memcpy(prev[m], j->op->in + j->op->len - KAIO_BLOCK, KAIO_BLOCK);
            tx[m] = (struct iovec){ (void *)j->op->in, j->op->len };
            rx[m] = (struct iovec){ j->op->out, j->op->len };
            total += j->op->len;
            g[m++] = j;
        }
        if (i < b->n && m == 0) {
            i++; /* a record too large to group: the waves split it */
            continue;
        }
        if (m < 2)
            return;
        t = kaio_key_tfm(k, 0, &err);
        if (t == NULL || (fd = kaio_key_op(k, t, 0)) < 0)
            return;
        j = g[0];
        j->t = t;
        j->sock = 0;
        j->fd = fd;
        if (send_iov(b, j, tx, (int)m) < 0) {
            /* Not run: leave the records to the waves, which report errors. */
            j->pending = 1;
            j->op->status = 0;
            j->op->reason = KAIO_R_NONE;
            j->op->err = 0;
            return;
        }
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = rx;
        msg.msg_iovlen = m;
        r = kaio_sys_recvmsg(fd, &msg, 0);
        if (r != (ssize_t)total) {
            /* Unknown socket state: drop it. A failed read wrote nothing, so
             * the waves can redo the group; a short one may have overwritten
             * in-place input, so those records are given up. */
            kaio_key_op_drop(t, 0);
            for (x = 0; r >= 0 && x < m; x++)
                not_run(g[x], KAIO_R_KERNEL_ERROR, EIO);
            return;
        }
        *ran = 1;
        kaio_count(KAIO_C_KERNEL_OPS, 1);
        for (x = 0; x < m; x++) {
            if (x > 0) {
                unsigned char *p = g[x]->op->out;
                const unsigned char *iv = g[x]->op->iv;
                int y;

                for (y = 0; y < KAIO_BLOCK; y++)
                    p[y] ^= prev[x - 1][y] ^ iv[y];
            }
            g[x]->off = g[x]->op->len;
            g[x]->shared = 1;
            finish(g[x], 0);
        }
    }
}

/* ---------------- CTR as one ecb(aes) operation ---------------- */

/* Keystream bytes per ecb operation and per key's scratch, at most: a key
 * keeps its scratch, so this bounds the memory a key holds. */
#define KS_MAX (64u * 1024)

static void ctr_inc(unsigned char c[16])
{
    int i = 15;

    while (i >= 0 && ++c[i] == 0)
        i--;
}

static void xor_stream(unsigned char *out, const unsigned char *in, const unsigned char *ks, size_t n)
{
    size_t i = 0;

    /* Word at a time: the compiler cannot vectorise when out may be in. */
    for (; i + 8 <= n; i += 8) {
        uint64_t a, c;

        memcpy(&a, in + i, 8);
        memcpy(&c, ks + i, 8);
        a ^= c;
        memcpy(out + i, &a, 8);
    }
    for (; i < n; i++)
        out[i] = in[i] ^ ks[i];
}

/* One ecb encryption of len bytes in buf, in place; 0 or -1 (socket dropped). */
static int ecb_run(struct kaio_key *k, int fd, unsigned char *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } cm;
    struct iovec io = { buf, len };
    struct msghdr m;
    struct cmsghdr *c;
    uint32_t opv = ALG_OP_ENCRYPT;
    unsigned attempt;
    ssize_t r;

    /* No IV: ecb(aes) has none, and the kernel rejects one of another size. */
    memset(&cm, 0, sizeof(cm));
    memset(&m, 0, sizeof(m));
    m.msg_control = cm.buf;
    m.msg_controllen = sizeof(cm.buf);
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_ALG;
    c->cmsg_type = ALG_SET_OP;
    c->cmsg_len = CMSG_LEN(sizeof(opv));
    memcpy(CMSG_DATA(c), &opv, sizeof(opv));
    r = kaio_sys_sendmsg(fd, &m, MSG_DONTWAIT);
    if (r != (ssize_t)len)
        goto drop;
    memset(&m, 0, sizeof(m));
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    /* The kernel copied the counters at sendmsg: the result may overwrite them. */
    for (attempt = 1;; attempt++) {
        r = kaio_sys_recvmsg(fd, &m, 0);
        if (r != -EINTR || attempt >= KAIO_RETRIES)
            break;
    }
    if (r == (ssize_t)len)
        return 0;
drop:
    /* Unknown socket state; the records keep their progress and the waves
     * finish them on the ctr(aes) sockets, which report any real error. */
    kaio_key_ecb_drop(k);
    return -1;
}

/*
 * CTR of n records is the XOR of each record with E_K(counter blocks): the
 * counter blocks of all pending records (each from its own counter, one per
 * started block) are encrypted by one ecb(aes) operation per KS_MAX bytes,
 * and the keystream is XORed into each output here. A record may span two
 * ecb operations; after a failure its offset and counter are where the
 * waves resume it. Without ecb(aes) this silently does nothing.
 */
static void coalesce_ctr(struct batch *b, int *ran)
{
    struct kaio_key *k = b->k;
    size_t lim = max_msg(k), i, nrec = 0, need = 0, cap, used = 0;
    unsigned char *ks;
    int fd;

    for (i = 0; i < b->n; i++)
        if (b->jobs[i].pending) {
            nrec++;
            need += (b->jobs[i].op->len + KAIO_BLOCK - 1) / KAIO_BLOCK * KAIO_BLOCK;
        }
    if (nrec < 2)
        return;
    lim = lim < KS_MAX ? lim : KS_MAX;
    lim -= lim % KAIO_BLOCK;
    cap = need < lim ? need : lim;
    if ((fd = kaio_key_ecb(k)) < 0 || (ks = kaio_key_scratch(k, cap)) == NULL)
        return;
    i = 0;
    while (i < b->n) {
        struct {
            struct job *j;
            size_t len;
            unsigned char next[16];
        } seg[KAIO_MAX_BATCH];
        size_t nseg = 0, fill = 0, x;

        /* Counter blocks of the pending records, in order, until cap is full. */
        for (; i < b->n && fill < cap; i++) {
            struct job *j = &b->jobs[i];
            size_t left, blocks, nb;
            unsigned char ctr[16];

            if (!j->pending)
                continue;
            left = j->op->len - j->off;
            blocks = (left + KAIO_BLOCK - 1) / KAIO_BLOCK;
            nb = (cap - fill) / KAIO_BLOCK;
            nb = blocks < nb ? blocks : nb;
            memcpy(ctr, j->iv, 16);
            for (x = 0; x < nb; x++) {
                memcpy(ks + fill + x * KAIO_BLOCK, ctr, 16);
                ctr_inc(ctr);
            }
            seg[nseg].j = j;
            seg[nseg].len = nb < blocks ? nb * KAIO_BLOCK : left;
            memcpy(seg[nseg].next, ctr, 16);
            nseg++;
            fill += nb * KAIO_BLOCK;
            if (nb < blocks)
                break; /* the rest of this record goes in the next operation */
        }
        if (fill == 0)
            break;
        used = fill > used ? fill : used;
        if (ecb_run(k, fd, ks, fill) < 0)
            break;
        *ran = 1;
        kaio_count(KAIO_C_KERNEL_OPS, 1);
        for (x = 0, fill = 0; x < nseg; x++) {
            struct job *j = seg[x].j;

            xor_stream(j->op->out + j->off, j->op->in + j->off, ks + fill, seg[x].len);
            fill += (seg[x].len + KAIO_BLOCK - 1) / KAIO_BLOCK * KAIO_BLOCK;
            memcpy(j->iv, seg[x].next, 16);
            j->off += seg[x].len;
            if (j->off == j->op->len) {
                j->shared = 1;
                finish(j, 0);
            }
        }
    }
    /* Keystream of records already sent is no one's business. */
    explicit_bzero(ks, used);
}

/* ---------------- the batch ---------------- */

static void setup_job(struct kaio_key *k, struct job *j, struct kaio_op *op)
{
    memset(j, 0, sizeof(*j));
    j->op = op;
    j->sock = -1;
    j->pending = 1;
    op->status = 0;
    op->err = 0;
    op->reason = KAIO_R_NONE;
    if (k->mode == KAIO_GCM) {
        if (op->ivlen != KAIO_GCM_KERNEL_IVLEN || op->iv == NULL) {
            not_run(j, KAIO_R_IV_LENGTH, EINVAL);
            return;
        }
        if (op->taglen < 1 || op->taglen > 16 || op->tag == NULL) {
            not_run(j, KAIO_R_TAG_LENGTH, EINVAL);
            return;
        }
        if ((op->len && (op->in == NULL || op->out == NULL)) || (op->aadlen && op->aad == NULL)) {
            not_run(j, KAIO_R_KERNEL_ERROR, EINVAL);
            return;
        }
        j->slot = (unsigned)op->taglen;
        j->as_encrypt = !op->encrypt && op->len == 0;
        memcpy(j->iv, op->iv, KAIO_GCM_KERNEL_IVLEN);
        return;
    }
    if ((op->ivlen != 0 && op->ivlen != KAIO_BLOCK) || op->iv == NULL) {
        not_run(j, KAIO_R_IV_LENGTH, EINVAL);
        return;
    }
    if ((k->mode == KAIO_CBC && op->len % KAIO_BLOCK) ||
        (op->len && (op->in == NULL || op->out == NULL))) {
        not_run(j, KAIO_R_KERNEL_ERROR, EINVAL);
        return;
    }
    memcpy(j->iv, op->iv, KAIO_BLOCK);
    if (op->len == 0)
        j->pending = 0; /* nothing to do: no kernel operation for an empty record */
}

static size_t run_slice(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path,
                        const struct kaio_wait *wait, struct job *jobs)
{
    struct job *w[KAIO_MAX_BATCH];
    struct batch b = { .k = k, .jobs = jobs, .n = n, .jobs_heap = wait != NULL, .efd = -1 };
    unsigned char aad_stack[512];
    struct aio_tls *a = NULL;
    size_t i, maxaad = 0, not_done = 0, torun = 0;
    int used_aio = 0, used_sync = 0, rebuilt = 0, stalled = 0;
    size_t last_sig = (size_t)-1;

    kaio_key_batch_begin(k);
    for (i = 0; i < n; i++) {
        setup_job(k, &jobs[i], &ops[i]);
        if (k->mode == KAIO_GCM && jobs[i].pending && ops[i].aadlen > maxaad)
            maxaad = ops[i].aadlen;
    }
    b.aad_sink = aad_stack;
    if (maxaad > sizeof(aad_stack) && (b.aad_heap = 1, b.aad_sink = kaio_sys_malloc(maxaad)) == NULL) {
        for (i = 0; i < n; i++)
            if (jobs[i].pending)
                not_run(&jobs[i], KAIO_R_KERNEL_ERROR, ENOMEM);
    }
    if (k->mode == KAIO_CBC && kaio_coalesce() && b.aad_sink != NULL)
        coalesce_cbc_decrypt(&b, &used_sync);
    if (k->mode == KAIO_CTR && kaio_coalesce())
        coalesce_ctr(&b, &used_sync);
    for (i = 0; i < n; i++)
        torun += jobs[i].pending;
    /* An AIO context only when something goes to the kernel. */
    if (path == KAIO_PATH_AIO && torun > 0) {
        if (!kaio_aio_disabled() && kaio_probe()->aio)
            a = aio_ctx();
        if (a == NULL)
            kaio_count_fallback(KAIO_R_AIO_UNAVAILABLE, torun);
        if (a != NULL && wait != NULL && wait->pause != NULL && wait->fd != NULL)
            b.wait = wait;
    }

    for (;;) {
        uint32_t used[KAIO_TAG_SLOTS] = { 0 };
        size_t m = 0, pending = 0;

        b.lost = 0;
        for (i = 0; i < n; i++) {
            struct job *j = &jobs[i];

            j->in_wave = 0;
            if (!j->pending)
                continue;
            pending++;
            if (j->lost > 1) {
                not_run(j, KAIO_R_FD_LOST, EBADF);
                continue;
            }
            if (take_socket(&b, j, used) != 0 || prepare(&b, j) != 0)
                continue;
            if (a == NULL) {
                /* Sync: each op's write and read back to back. */
                if (send_one(&b, j) == 0) {
                    used_sync = 1;
                    recv_sync(&b, j);
                }
                continue;
            }
            if (send_one(&b, j) == 0)
                w[m++] = j;
        }
        if (pending == 0)
            break;
        {
            /* Every wave must move something, or the loop would spin. */
            size_t sig = 0;

            for (i = 0; i < n; i++)
                sig += jobs[i].off + jobs[i].pending + jobs[i].lost + jobs[i].retries;
            if (m == 0 && !b.lost && sig == last_sig && ++stalled >= 3) {
                for (i = 0; i < n; i++)
                    if (jobs[i].pending)
                        not_run(&jobs[i], KAIO_R_FD_BUDGET, EMFILE);
                continue;
            }
            last_sig = sig;
        }
        if (m > 0) {
            size_t via = aio_wave(&b, a, w, m);

            used_aio |= via > 0;
            used_sync |= via < m;
            if (b.forked) {
                /* Go on in the child with its own sockets and context. */
                b.forked = 0;
                kaio_key_check_fork(k);
                kaio_key_batch_begin(k);
                a = aio_ctx();
                if (a != NULL && wait != NULL && wait->pause != NULL && wait->fd != NULL)
                    b.wait = wait;
            }
            if (tls.state != 1)
                a = NULL;
            if (a == NULL)
                b.wait = NULL;
        }
        if (b.lost) {
            if (rebuilt++ > 0) {
                /* Lost twice in one call: give up on the kernel for these. */
                for (i = 0; i < n; i++)
                    if (jobs[i].pending && jobs[i].lost)
                        not_run(&jobs[i], KAIO_R_FD_LOST, EBADF);
            }
            kaio_key_drop_all(k);
        }
    }
    if (b.aad_heap)
        free(b.aad_sink);
    if (used_sync)
        kaio_note_inflight(1); /* one synchronous operation at a time */
    if (used_aio)
        kaio_count(KAIO_C_BATCHES_AIO, 1);
    else if (used_sync)
        kaio_count(KAIO_C_BATCHES_SYNC, 1);
    for (i = 0; i < n; i++)
        not_done += ops[i].status == KAIO_NOT_RUN;
    return not_done;
}

/* Outside a job: the records' state on the caller's stack. */
__attribute__((noinline)) static size_t run_slice_stack(struct kaio_key *k, struct kaio_op *ops,
                                                        size_t n, enum kaio_path path)
{
    struct job jobs[KAIO_MAX_BATCH];

    return run_slice(k, ops, n, path, NULL, jobs);
}

/*
 * An OpenSSL ASYNC job runs on a stack of its own (32 KiB), under libssl's
 * frames: a batch that may pause keeps its records' state (about 14 KiB for
 * a full batch) on the heap. Freed here, or by kaio_pending_abandon.
 */
static size_t run_slice_heap(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path,
                             const struct kaio_wait *wait)
{
    struct job *jobs = kaio_sys_malloc(n * sizeof(*jobs));
    size_t i, r;

    if (jobs == NULL) {
        for (i = 0; i < n; i++) {
            ops[i].status = KAIO_NOT_RUN;
            ops[i].reason = KAIO_R_KERNEL_ERROR;
            ops[i].err = ENOMEM;
        }
        return n;
    }
    r = run_slice(k, ops, n, path, wait, jobs);
    free(jobs);
    return r;
}

size_t kaio_key_run(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path)
{
    return kaio_key_run_wait(k, ops, n, path, NULL);
}

/* Rounds of the loop a job waits for a key held by another job of its
 * thread: its holder resumes in the same rounds, so this is far more than
 * it needs; a caller that blocked pauses would spin here without a bound. */
#define KEY_WAIT_ROUNDS 10000

/* Takes the key; -1 when it cannot be had. Inside a job, a key held by a job
 * paused on this thread cannot be waited for by blocking (the holder resumes
 * only when this thread's loop runs): the job pauses until a round finds it
 * free. The thread's context stands for the thread. */
static int key_take(struct kaio_key *k, const struct kaio_wait *w)
{
    unsigned rounds = 0;

    if (w == NULL || w->pause == NULL || w->fd == NULL) {
        pthread_mutex_lock(&k->lock);
    } else {
        while (pthread_mutex_trylock(&k->lock) != 0) {
            struct batch wb;
            int fd;

            if (__atomic_load_n(&k->holder, __ATOMIC_ACQUIRE) != (const void *)&tls) {
                /* Another thread's run: it ends without this one's help. */
                pthread_mutex_lock(&k->lock);
                break;
            }
            if (++rounds > KEY_WAIT_ROUNDS || (fd = w->fd(w->arg, 1)) < 0)
                return -1;
            memset(&wb, 0, sizeof(wb));
            wb.k = k;
            wb.keywait = 1;
            wb.efd = fd;
            /* Readable: the loop resumes this job in its next round. */
            kaio_sys_eventfd_write(fd);
            if (w->pause(w->arg, fd, (struct kaio_pending *)&wb) != 0)
                return -1;
        }
    }
    __atomic_store_n(&k->holder, (const void *)&tls, __ATOMIC_RELEASE);
    return 0;
}

static void key_give(struct kaio_key *k)
{
    __atomic_store_n(&k->holder, NULL, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&k->lock);
}

size_t kaio_key_run_wait(struct kaio_key *k, struct kaio_op *ops, size_t n, enum kaio_path path,
                         const struct kaio_wait *w)
{
    size_t done = 0, not_run = 0, i;

    if (k == NULL || (ops == NULL && n > 0))
        return n;
    if (key_take(k, w) != 0) {
        for (i = 0; i < n; i++) {
            ops[i].status = KAIO_NOT_RUN;
            ops[i].reason = KAIO_R_KEY_BUSY;
            ops[i].err = EDEADLK;
        }
        return n;
    }
    kaio_key_check_fork(k);
    while (done < n) {
        size_t m = n - done < KAIO_MAX_BATCH ? n - done : KAIO_MAX_BATCH;

        not_run += w != NULL ? run_slice_heap(k, ops + done, m, path, w)
                             : run_slice_stack(k, ops + done, m, path);
        done += m;
    }
    key_give(k);
    return not_run;
}

void kaio_pending_abandon(struct kaio_pending *p)
{
    struct batch *b = (struct batch *)p;
    struct aio_tls *a;

    if (b == NULL || b->abandoned || b->keywait)
        return;
    a = b->a;
    b->abandoned = 1;
    b->wait = NULL;
    if (b->k->paused == p)
        b->k->paused = NULL;
    kaio_count(KAIO_C_ASYNC_ABANDONED, 1);
    if (b->queued > 0) {
        /* Queued, never submitted: no kernel write to wait for, but the
         * data waits on each socket, so those sockets are not reused (in a
         * forked child they are the parent's: the key drops them all). */
        size_t i, k = 0;

        for (i = 0; i < a->nq; i++) {
            struct job *j = a->q[i];

            if (j->b != b) {
                a->q[k++] = j;
                continue;
            }
            j->queued = 0;
            j->cb.data = NULL;
            if (b->gen == kaio_fork_generation())
                kaio_key_op_drop(j->t, (unsigned)j->sock);
        }
        a->nq = k;
        b->queued = 0;
        /* It may have been the job that made the queue's wake-up: the job
         * of the first read left there runs next round and submits. */
        if (k > 0 && a->q[0]->b->efd >= 0 && b->gen == kaio_fork_generation())
            kaio_sys_eventfd_write(a->q[0]->b->efd);
    }
    /* The kernel writes into the batch's buffers until each read is reaped;
     * in a forked child the reads and the buffers they fill are the parent's. */
    while (b->gen == kaio_fork_generation() && b->outstanding > b->nready && b->epoch == a->epoch) {
        int r = reap(a, b, 1);

        if (r == -EINTR)
            continue;
        if (r <= 0) {
            aio_ctx_reset(); /* io_destroy waits for every read */
            break;
        }
    }
    if (b->foreign) {
        b->foreign = 0;
        if (b->gen == kaio_fork_generation())
            a->foreign--;
    }
    b->outstanding = b->nready = 0;
    free(b->bounce);
    b->bounce = NULL;
    if (b->jobs_heap)
        free(b->jobs); /* the job never comes back to free them */
    b->jobs_heap = 0;
    if (b->aad_heap)
        free(b->aad_sink);
    b->aad_heap = 0;
    /* The job will not come back to finish the run: its key is free again. */
    key_give(b->k);
}
